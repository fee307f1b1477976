"""The paper's Newtonian kinematic constraint, as batched differentiable torch kernels.

Under constant acceleration the velocity changes linearly in time, so its second difference vanishes. With
optical flow ``phi(t)`` (the displacement from frame t to t+1, a velocity in pixels per frame) the
constraint of NewtonRewards (arXiv 2512.00425) is

    R = mean over t (and pixels) of || phi(t+1) - 2 phi(t) + phi(t-1) ||^2 .

Units: ``phi`` is in px/frame and its second difference over frames in px/frame^3 (a jerk), so ``R`` is in
px^2/frame^6. It is NOT normalised: values are in the pixels of the frames given (the scorer passes frames
at the benchmark's resolution, so numbers are comparable across models); multiply by fps^6 for px^2/s^6.
Range [0, inf), lower is better; 0 for any constant image-plane acceleration.

Flow is Eulerian (one vector per fixed pixel). At a fixed pixel that a moving object enters or leaves,
phi jumps between the object's velocity and 0, so the literal per-pixel formula is large around every
moving object even when it obeys Newton exactly. By default (``follow=True``) ``phi`` is therefore read
along the flow's own trajectories: a point starting at pixel p in frame t-1 is carried to
x(t) = p + phi(t-1)(p) and x(t+1) = x(t) + phi(t)(x(t)), and the residual is
``phi(t+1)(x(t+1)) - 2 phi(t)(x(t)) + phi(t-1)(p)`` (bilinear reads, differentiable). ``follow=False``
gives the literal fixed-pixel formula.

``track_residual`` applies the same second difference to the velocity of a centroid track (i.e. the third
difference of positions), and ``soft_centroids`` turns soft object masks into differentiable centroids.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from newtonbench.errors import InvalidValueError
from newtonbench.metrics.functional.flow import _base_grid, estimate_flow, sample_at, shrink_frames

Tensor = torch.Tensor


def _second_difference_along_flow(flow: Tensor) -> tuple[Tensor, Tensor]:
    """[B, T-1, 2, H, W] flow -> ([B, T-3, 2, H, W] second difference, [B, T-3, H, W] in-image weight).

    Index r of the result is anchored at pixel p of frame r (so it uses flows r, r+1, r+2).
    """
    b, n, _, h, w = flow.shape
    grid = _base_grid(h, w, flow.dtype, flow.device)
    # phi(t) read at x(t) = p + phi(t-1)(p), for every t at once.
    first = flow[:, :-1].reshape(b * (n - 1), 2, h, w)
    pos1 = grid + first
    mid = sample_at(flow[:, 1:].reshape(b * (n - 1), 2, h, w), pos1).reshape(b, n - 1, 2, h, w)
    pos1 = pos1.reshape(b, n - 1, 2, h, w)
    pos2 = pos1[:, :-1] + mid[:, :-1]
    last = sample_at(flow[:, 2:].reshape(b * (n - 2), 2, h, w), pos2.reshape(b * (n - 2), 2, h, w))
    last = last.reshape(b, n - 2, 2, h, w)
    d2 = last - 2.0 * mid[:, :-1] + flow[:, :-2]
    with torch.no_grad():
        # A trajectory that leaves the image reads clamped border flow: it carries no evidence.
        def inside(pos: Tensor) -> Tensor:
            return (
                (pos[:, :, 0] >= 0) & (pos[:, :, 0] <= w - 1) & (pos[:, :, 1] >= 0) & (pos[:, :, 1] <= h - 1)
            )

        weight = (inside(pos1[:, :-1]) & inside(pos2)).to(flow.dtype)
    return d2, weight


_SPARSE_FRACTION = 0.05


def _bilinear_points(flow: Tensor, index: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """flow [M, 2, H, W] read at points (u, v) [K] of images index [K], border-clamped bilinear (the same
    values as ``sample_at``): [K, 2]."""
    h, w = flow.shape[-2:]
    u = u.clamp(0, w - 1)
    v = v.clamp(0, h - 1)
    u0 = u.floor().clamp_(max=max(w - 2, 0))
    v0 = v.floor().clamp_(max=max(h - 2, 0))
    fu, fv = (u - u0).unsqueeze(1), (v - v0).unsqueeze(1)
    u0, v0 = u0.long(), v0.long()
    u1, v1 = (u0 + 1).clamp_(max=w - 1), (v0 + 1).clamp_(max=h - 1)
    flat = flow.reshape(flow.shape[0], 2, h * w)

    def at(vv: Tensor, uu: Tensor) -> Tensor:
        return flat[index, :, vv * w + uu]

    return (at(v0, u0) * (1 - fu) + at(v0, u1) * fu) * (1 - fv) + (
        at(v1, u0) * (1 - fu) + at(v1, u1) * fu
    ) * fv


def _masked_residual_along_flow(flow: Tensor, weight: Tensor, pixel_scale: tuple[float, float]) -> Tensor:
    """The followed residual evaluated only where ``weight [B, T-3, H, W]`` is non-zero (no autograd): the
    scorer's object mask covers a few percent of its crop, so reading every pixel's trajectory wasted most
    of the residual's time. Same values as the dense path up to float rounding."""
    b, n, _, h, w = flow.shape
    bi, ri, yi, xi = weight.nonzero(as_tuple=True)
    flows = flow.reshape(b * n, 2, h, w)
    img = bi * n + ri
    wk = weight[bi, ri, yi, xi]
    p0 = flows[img, :, yi, xi]  # [K, 2]
    u1, v1 = xi.to(flow.dtype) + p0[:, 0], yi.to(flow.dtype) + p0[:, 1]
    p1 = _bilinear_points(flows, img + 1, u1, v1)
    u2, v2 = u1 + p1[:, 0], v1 + p1[:, 1]
    p2 = _bilinear_points(flows, img + 2, u2, v2)
    inside = (u1 >= 0) & (u1 <= w - 1) & (v1 >= 0) & (v1 <= h - 1) & (u2 >= 0) & (u2 <= w - 1)
    inside &= (v2 >= 0) & (v2 <= h - 1)
    wk = wk * inside.to(flow.dtype)
    d2 = p2 - 2.0 * p1 + p0
    if tuple(pixel_scale) != (1.0, 1.0):
        d2 = d2 * torch.tensor(pixel_scale, dtype=d2.dtype, device=d2.device)
    sq = (d2 * d2).sum(1)
    num = torch.zeros(b, dtype=flow.dtype, device=flow.device).index_add_(0, bi, sq * wk)
    den = torch.zeros(b, dtype=flow.dtype, device=flow.device).index_add_(0, bi, wk)
    return num, den


def kinematic_residual_from_flow(
    flow: Tensor,
    mask: Tensor | None = None,
    *,
    follow: bool = True,
    pixel_scale: tuple[float, float] = (1.0, 1.0),
) -> Tensor:
    """The kinematic residual of a precomputed flow (see :func:`kinematic_residual`).

    Args:
        flow: ``[B, T-1, 2, H, W]`` flow from frame t to t+1 in px/frame.
        mask: optional ``[B, T, H, W]`` weights in [0, 1] (hard or soft object masks); the residual
            anchored at pixel p of frame r is weighted by ``mask[:, r, p]``.
        follow: read the flow along its trajectories (default) or at fixed pixels (the literal formula).
        pixel_scale: (su, sv) size of one flow pixel in output pixels, when the flow was computed on
            resized frames: the second difference is converted before it is squared.

    Returns:
        ``[B]`` in px^2/frame^6, lower is better; NaN for a clip whose mask has zero total weight.
    """
    if flow.ndim != 5 or flow.shape[2] != 2:
        raise InvalidValueError(f"flow must be [B, T-1, 2, H, W]; got {tuple(flow.shape)}")
    b, n, _, h, w = flow.shape
    if n < 3:
        raise InvalidValueError(f"the kinematic residual needs at least 4 frames; got T={n + 1}")
    if mask is not None and mask.shape != (b, n + 1, h, w):
        raise InvalidValueError(f"mask must be [B, T, H, W] = {(b, n + 1, h, w)}; got {tuple(mask.shape)}")
    # Point by point costs ~15x more per pixel than the dense path: worth it only for sparse masks (the
    # scorer's object covers a few percent of its crop). Measured crossover on one thread: ~8% of pixels.
    anchored = mask[:, : n - 2] if follow and mask is not None else None
    needs_grad = anchored is not None and torch.is_grad_enabled() and (flow.requires_grad or mask.requires_grad)
    if (anchored is not None and not needs_grad
            and int(torch.count_nonzero(anchored)) <= _SPARSE_FRACTION * anchored.numel()):
        num, total = _masked_residual_along_flow(flow, anchored.to(flow.dtype), pixel_scale)
        value = num / total.clamp_min(torch.finfo(flow.dtype).tiny)
        return torch.where(total > 0, value, torch.full_like(value, float("nan")))
    if follow:
        d2, weight = _second_difference_along_flow(flow)
    else:
        d2 = flow[:, 2:] - 2.0 * flow[:, 1:-1] + flow[:, :-2]
        weight = torch.ones(b, n - 2, h, w, dtype=flow.dtype, device=flow.device)
    if mask is not None:
        if mask.shape != (b, n + 1, h, w):
            raise InvalidValueError(
                f"mask must be [B, T, H, W] = {(b, n + 1, h, w)}; got {tuple(mask.shape)}"
            )
        weight = weight * mask[:, : n - 2].to(flow.dtype)
    if tuple(pixel_scale) != (1.0, 1.0):
        d2 = d2 * torch.tensor(pixel_scale, dtype=d2.dtype, device=d2.device).view(1, 1, 2, 1, 1)
    sq = (d2 * d2).sum(2)
    total = weight.sum((1, 2, 3))
    value = (sq * weight).sum((1, 2, 3)) / total.clamp_min(torch.finfo(flow.dtype).tiny)
    # An empty mask has no residual to report: NaN (a status for the scorer), never a fake 0.
    return torch.where(total > 0, value, torch.full_like(value, float("nan")))


def kinematic_residual(
    frames: Tensor,
    mask: Tensor | None = None,
    flow: str = "lk",
    *,
    follow: bool = True,
    max_side: int | None = None,
    **kw,
) -> Tensor:
    """Mean squared second difference of optical flow, per clip: the paper's Newtonian kinematic constraint.

    ``R = sum_{t,p} w(t,p) ||phi(t+1) - 2 phi(t) + phi(t-1)||^2 / sum_{t,p} w(t,p)`` over the T-3 interior
    steps, with ``phi`` read along the flow's trajectories (``follow=True``, see the module docstring) or
    at fixed pixels (``follow=False``); ``w`` is the mask (1 without one) times an indicator that the
    trajectory stays in the image.

    Args:
        frames: ``[B, T, C, H, W]`` float in [0, 1], T >= 4.
        mask: optional ``[B, T, H, W]`` weights in [0, 1]; the object's (soft) mask restricts the
            residual to the object.
        flow: flow method name (``"lk"`` weight-free default, ``"raft"`` with ``weights=PATH``).
        follow: see above.
        max_side: when the frames' long side is larger, frames and mask are resized (antialiased) to
            this long side, flow and residual are computed there, and the second difference is converted
            back to the pixels of the frames given (the speed knob for scoring 256x256 clips on a CPU:
            ``max_side=128`` does ~1/4 of the work).
        **kw: options of the flow method (e.g. ``iterations``, ``window``; ``weights=PATH`` for RAFT).

    Returns:
        ``[B]`` in px^2/frame^6 (pixels of the frames given, not normalised), range [0, inf), lower is
        better, 0 for constant image-plane acceleration; NaN where the mask is empty. Differentiable in
        ``frames`` (and ``mask``).
    """
    if frames.ndim != 5 or frames.shape[1] < 4:
        shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise InvalidValueError(
            f"frames must be [B, T, C, H, W] with T >= 4 for the kinematic residual; got {shape}"
        )
    b, t, _, h, w = frames.shape
    scale = (1.0, 1.0)
    if max_side is not None:
        if not isinstance(max_side, int) or max_side < 8:
            raise InvalidValueError(f"max_side={max_side!r} must be an integer >= 8")
        if max(h, w) > max_side:
            frames = shrink_frames(frames, max_side, min_side=8)
            hs, ws = frames.shape[-2:]
            if mask is not None:
                if mask.shape != (b, t, h, w):
                    raise InvalidValueError(
                        f"mask must be [B, T, H, W] = {(b, t, h, w)}; got {tuple(mask.shape)}"
                    )
                mask = F.interpolate(
                    mask.reshape(b * t, 1, h, w).to(frames.dtype), size=(hs, ws), mode="area"
                ).reshape(b, t, hs, ws)
            # corners aligned: pixel i of the small image sits at i * (W - 1) / (ws - 1) of the large one
            scale = ((w - 1) / (ws - 1), (h - 1) / (hs - 1))
    phi = estimate_flow(frames, method=flow, **kw)
    return kinematic_residual_from_flow(phi, mask, follow=follow, pixel_scale=scale)


def track_residual(centroids: Tensor, valid: Tensor | None = None) -> Tensor:
    """The kinematic constraint on a point track: mean squared third difference of positions.

    With velocity ``v(t) = c(t+1) - c(t)`` (px/frame), the residual is the mean over t of
    ``||v(t+1) - 2 v(t) + v(t-1)||^2 = ||c(t+2) - 3 c(t+1) + 3 c(t) - c(t-1)||^2``: exactly 0 for any
    constant image-plane acceleration (positions quadratic in t), the same quantity as the flow residual.

    Args:
        centroids: ``[B, T, 2]`` positions in pixels (u, v), T >= 4.
        valid: optional ``[B, T]`` bool or weights in [0, 1]; a step counts with the product of the
            weights of its four frames.

    Returns:
        ``[B]`` in px^2/frame^6, range [0, inf), lower is better; NaN where no step is valid.
        Differentiable in ``centroids``.
    """
    if centroids.ndim != 3 or centroids.shape[-1] != 2 or centroids.shape[1] < 4:
        raise InvalidValueError(f"centroids must be [B, T, 2] with T >= 4; got {tuple(centroids.shape)}")
    c = centroids
    d3 = c[:, 3:] - 3.0 * c[:, 2:-1] + 3.0 * c[:, 1:-2] - c[:, :-3]
    sq = (d3 * d3).sum(-1)
    if valid is None:
        return sq.mean(1)
    if valid.shape != c.shape[:2]:
        raise InvalidValueError(f"valid must be [B, T] = {tuple(c.shape[:2])}; got {tuple(valid.shape)}")
    v = valid.to(c.dtype)
    weight = v[:, 3:] * v[:, 2:-1] * v[:, 1:-2] * v[:, :-3]
    total = weight.sum(1)
    value = (sq * weight).sum(1) / total.clamp_min(torch.finfo(c.dtype).tiny)
    return torch.where(total > 0, value, torch.full_like(value, float("nan")))


def soft_centroids(prob: Tensor, eps: float = 1e-6) -> Tensor:
    """Probability-weighted centroids of soft masks.

    Args:
        prob: ``[B, T, H, W]`` foreground probabilities (or hard 0/1 masks).
        eps: added to the mass so an empty mask gives a finite (image-origin-pulled) centroid and
            finite gradients; check the mass yourself where empty masks matter.

    Returns:
        ``[B, T, 2]`` centroid (u, v) in pixels, pixel centres at integer coordinates. Differentiable.
    """
    if prob.ndim != 4:
        raise InvalidValueError(f"prob must be [B, T, H, W]; got {tuple(prob.shape)}")
    h, w = prob.shape[-2:]
    u = torch.arange(w, dtype=prob.dtype, device=prob.device)
    v = torch.arange(h, dtype=prob.dtype, device=prob.device)
    mass = prob.sum((-1, -2)) + eps
    cu = (prob.sum(-2) * u).sum(-1) / mass
    cv = (prob.sum(-1) * v).sum(-1) / mass
    return torch.stack((cu, cv), dim=-1)
