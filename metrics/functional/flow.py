"""Dense optical flow between consecutive frames, as a batched, differentiable torch kernel.

``estimate_flow(frames, method="lk")`` returns the flow ``phi(t)`` from frame t to frame t+1 for every
t at once, in pixels per frame, with ``frames[:, t](p) ~= frames[:, t+1](p + phi(t)(p))``:

- ``"lk"`` (default, weight-free): coarse-to-fine iterative Lucas-Kanade (Bouguet's pyramidal scheme) on a
  2x2-mean image pyramid. At every level the second frame is warped by the current flow with
  ``grid_sample``; the box-windowed structure tensor, summed over colour channels, gives a 2x2 system per
  pixel, solved in closed form with a small Tikhonov term so that flat regions stay finite (their flow
  decays to 0 instead of exploding). Every step is a torch op, so gradients reach the frames.
- ``"raft"``: torchvision's RAFT (``raft_small`` / ``raft_large``) from a local weights file (an
  optional extra: torchvision has no CPU build next to the CPU torch, see DESIGN.md). Also differentiable.

Pixel convention: OpenCV's, pixel centres at integer coordinates, u (channel 0 of the flow) to the right,
v (channel 1) down.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F

from newtonbench.errors import InvalidValueError, MissingDependencyError, check_range
from newtonbench.registry import Registry

Tensor = torch.Tensor

FLOW_METHODS: Registry[Callable[..., Tensor]] = Registry("flow method")


def _check_frames(frames: Tensor) -> None:
    if not isinstance(frames, torch.Tensor) or frames.ndim != 5:
        shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise InvalidValueError(f"frames must be a tensor [B, T, C, H, W]; got {shape}")
    if frames.shape[1] < 2:
        raise InvalidValueError(f"frames need at least 2 time steps for a flow; got T={frames.shape[1]}")
    if not frames.is_floating_point():
        raise InvalidValueError(f"frames must be float in [0, 1]; got dtype {frames.dtype}")


def estimate_flow(frames: Tensor, method: str = "lk", **kw) -> Tensor:
    """Optical flow between consecutive frames.

    Args:
        frames: ``[B, T, C, H, W]`` float in [0, 1] (any float dtype, any device).
        method: a registered flow method: ``"lk"`` (weight-free, default) or ``"raft"`` (needs
            ``weights=PATH``, a local torchvision RAFT state dict).
        **kw: options of the method (see :func:`lucas_kanade_flow`, :func:`raft_flow`).

    Returns:
        ``[B, T-1, 2, H, W]`` flow from frame t to t+1 in pixels per frame (u right, v down), in the
        dtype and on the device of ``frames``; differentiable in ``frames``.
    """
    _check_frames(frames)
    return FLOW_METHODS.get(method)(frames, **kw)


# ---------------------------------------------------------------------------------------------------------
# Weight-free pyramidal Lucas-Kanade


def _window_sum(x: Tensor, size: int, dim: int) -> Tensor:
    """Sums of ``size`` consecutive entries along ``dim`` (length L -> L - size + 1).

    ``unfold`` is a view, so this is one strided reduction. Measured on one CPU thread it is 2-12x faster
    than ``avg_pool2d`` (whose CPU kernel loops over the full size x size window per output pixel), than a
    grouped conv2d, than cumulative sums and than doubling sums of shifted slices.
    """
    return x.unfold(dim, size, 1).sum(-1)


def _box_forward(x: Tensor, size: int) -> Tensor:
    r = size // 2
    p = F.pad(x, (r, r, r, r), mode="replicate")
    # Separable: window sums along u, then along v.
    return _window_sum(_window_sum(p, size, -1), size, -2) * (1.0 / (size * size))


class _BoxMean(torch.autograd.Function):
    """The box filter as ONE autograd node: its ~25 slices and adds would otherwise each record a backward
    node (each slice's backward allocating a zeroed input-sized tensor), which dominated the flow's
    backward on small images."""

    @staticmethod
    def forward(ctx, x: Tensor, size: int) -> Tensor:
        ctx.size = size
        ctx.save_for_backward(x)  # only its shape is read, by replication_pad2d_backward
        return _box_forward(x, size)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        size = ctx.size
        r = size // 2
        # Adjoint of "window mean over the replicate-padded image": window sums of the zero-padded
        # gradient give the gradient of the padded image, whose border is then folded back onto the edge
        # pixels (the adjoint of replicate padding).
        g = F.pad(grad, (2 * r, 2 * r, 2 * r, 2 * r))
        g = _window_sum(_window_sum(g, size, -1), size, -2) * (1.0 / (size * size))
        return torch.ops.aten.replication_pad2d_backward(g, x, [r, r, r, r]), None


# Up to this side the box filter runs as two small matrix products (M_h @ x @ M_w^T, the replicate padding
# folded into the banded matrices): measured on one thread, [8, 5, s, s] maps forward, 20 -> 8 us at s = 8,
# 34 -> 14 us at 16, 73 -> 57 us at 32 (the window sums' strided reductions cost a fixed ~10 us each at
# small sizes), and the backward is two more products. Above it the products' O(side) work per pixel loses.
_BOX_MATMUL_SIDE = 32
_BOX_MATRICES: dict[tuple, Tensor] = {}


def _box_matrix(n: int, size: int, dtype, device) -> Tensor:
    """[n, n] window mean along one axis with replicate padding: row i averages entries clamp(i-r..i+r)."""
    key = (n, size, dtype, str(device))
    m = _BOX_MATRICES.get(key)
    if m is None:
        r = size // 2
        rows = torch.arange(n).repeat_interleave(size)
        cols = (torch.arange(n).view(-1, 1) + torch.arange(-r, r + 1)).clamp(0, n - 1).reshape(-1)
        m = torch.zeros(n, n, dtype=torch.float64).index_put_(
            (rows, cols), torch.tensor(1.0 / size, dtype=torch.float64), accumulate=True
        )
        m = m.to(dtype=dtype, device=device)
        _BOX_MATRICES[key] = m
    return m


def _box(x: Tensor, size: int) -> Tensor:
    """Mean over a size x size window (odd size), replicate padding; same spatial shape."""
    if size == 1:
        return x
    h, w = x.shape[-2:]
    if max(h, w) <= _BOX_MATMUL_SIDE:
        mh = _box_matrix(h, size, x.dtype, x.device)
        mw = _box_matrix(w, size, x.dtype, x.device)
        return torch.matmul(mh, torch.matmul(x, mw.t()))
    if torch.is_grad_enabled() and x.requires_grad:
        return _BoxMean.apply(x, size)
    return _box_forward(x, size)


def _box_adjoint(grad: Tensor, size: int, like: Tensor) -> Tensor:
    """The adjoint of :func:`_box` applied to ``grad`` (``like``: a tensor of the input's shape)."""
    if size == 1:
        return grad
    h, w = grad.shape[-2:]
    if max(h, w) <= _BOX_MATMUL_SIDE:
        mh = _box_matrix(h, size, grad.dtype, grad.device)
        mw = _box_matrix(w, size, grad.dtype, grad.device)
        return torch.matmul(mh.t(), torch.matmul(grad, mw))
    return _BoxMean.backward(_Saved((like,), size=size), grad)[0]


class _Saved:
    """A stand-in for an autograd ctx, so that the fused iteration reuses the parts' forwards and backwards."""

    def __init__(self, saved: tuple = (), **attrs):
        self.saved_tensors = saved
        self.__dict__.update(attrs)

    def save_for_backward(self, *tensors: Tensor) -> None:
        self.saved_tensors = tensors


_RESAMPLE_MATRICES: dict[tuple, Tensor] = {}


def _resample_matrix(kind: str, n: int, dtype, device) -> Tensor:
    """One axis of :func:`_downsample` (``"down"``: [ceil(n/2), n]) or of :func:`_upsample_flow` (``"up"``:
    [n, ceil(n/2)]; ``"up2"``: the same doubled, the flow's unit change; built by applying the very
    interpolation to an identity matrix), for small images, where two matrix products (one op each way)
    beat the pooling / interpolation kernels. Used only with gradients: those kernels' backwards cost
    ~30 us each on 32x32 flows."""
    key = (kind, n, dtype, str(device))
    m = _RESAMPLE_MATRICES.get(key)
    if m is None:
        nc = (n + 1) // 2
        with torch.no_grad():
            if kind == "down":
                # Coarse i = mean of fine 2i and 2i + 1 (an odd side's last pixel replicated).
                i = torch.arange(nc)
                m = torch.zeros(nc, n, dtype=torch.float64)
                half = torch.tensor(0.5, dtype=torch.float64)
                m.index_put_((i, 2 * i), half, accumulate=True)
                m.index_put_((i, (2 * i + 1).clamp(max=n - 1)), half, accumulate=True)
            else:
                eye = torch.eye(nc, dtype=torch.float64).view(1, 1, nc, nc)
                up = F.interpolate(eye, size=(2 * nc, nc), mode="bilinear", align_corners=False)
                m = (2.0 if kind == "up2" else 1.0) * up[0, 0, :n]
        m = m.to(dtype=dtype, device=device)
        _RESAMPLE_MATRICES[key] = m
    return m


def _downsample(x: Tensor) -> Tensor:
    """Halve [N, C, H, W] by 2x2 means (odd sides padded by replication): coarse pixel i sits at fine 2i + 0.5."""
    h, w = x.shape[-2:]
    if max(h, w) <= _BOX_MATMUL_SIDE and x.requires_grad:
        mh = _resample_matrix("down", h, x.dtype, x.device)
        mw = _resample_matrix("down", w, x.dtype, x.device)
        return torch.matmul(mh, torch.matmul(x, mw.t()))
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
    return F.avg_pool2d(x, 2)


def _base_grid(h: int, w: int, dtype, device) -> Tensor:
    """[1, 2, H, W] pixel coordinates (u, v) of every pixel centre."""
    v, u = torch.meshgrid(
        torch.arange(h, dtype=dtype, device=device),
        torch.arange(w, dtype=dtype, device=device),
        indexing="ij",
    )
    return torch.stack((u, v)).unsqueeze(0)


def sample_at(image: Tensor, coords: Tensor) -> Tensor:
    """Bilinearly sample ``image [N, C, H, W]`` at pixel coordinates ``coords [N, 2, H', W']`` (u, v).

    Out-of-image coordinates read the nearest border pixel. Differentiable in both arguments.
    """
    h, w = image.shape[-2:]
    # align_corners=True maps -1 / +1 onto the centres of the border pixels: pixel coordinates stay exact.
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], dtype=coords.dtype, device=coords.device)
    grid = (coords.movedim(1, -1) * scale).sub_(1.0)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def _upsample_flow(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """Flow of the coarser level (its pixel i sits at fine 2i + 0.5) -> the finer level, doubled.

    Fine pixel i reads coarse coordinate i / 2 - 0.25, clamped to the image: exactly bilinear 2x upsampling
    with align_corners=False (cheaper than grid_sample); an odd fine side is the 2x image cropped.
    """
    h, w = size
    if max(h, w) <= _BOX_MATMUL_SIDE and flow.requires_grad:
        mh = _resample_matrix("up2", h, flow.dtype, flow.device)  # the flow's doubling, once
        mw = _resample_matrix("up", w, flow.dtype, flow.device)
        return torch.matmul(mh, torch.matmul(flow, mw.t()))
    up = F.interpolate(flow, scale_factor=2.0, mode="bilinear", align_corners=False)
    return 2.0 * up[..., :h, :w]


def _pyramid_levels(h: int, w: int, levels: int | None, min_size: int) -> int:
    if levels is not None:
        return levels
    n = 1
    while n < 6 and min(h, w) / 2**n >= min_size:
        n += 1
    return n


_DIFF_MATRICES: dict[tuple, Tensor] = {}


def _diff_matrix(n: int, dtype, device) -> Tensor:
    """[n, n] plain central difference along one axis with replicate border: row i is e_{min(i+1, n-1)} -
    e_{max(i-1, 0)} (the same values as differences of the replicate-padded image)."""
    key = (n, dtype, str(device))
    d = _DIFF_MATRICES.get(key)
    if d is None:
        i = torch.arange(n)
        d = torch.zeros(n, n, dtype=torch.float64)
        d.index_put_((i, (i + 1).clamp(max=n - 1)), torch.tensor(1.0, dtype=torch.float64), accumulate=True)
        d.index_put_((i, (i - 1).clamp(min=0)), torch.tensor(-1.0, dtype=torch.float64), accumulate=True)
        d = d.to(dtype=dtype, device=device)
        _DIFF_MATRICES[key] = d
    return d


class _Maps(torch.autograd.Function):
    """The five per-pixel maps of an iteration, before the window: inside * (s11, s12, s22, -b1, -b2) with
    s = g g^T and b = 4 g e - s f0 (16x units; g the plain central differences, replicate border, of
    i1 + warped, e = warped - i1, summed over channels), as ONE autograd node with a hand-written backward
    (recorded op by op: ~20 nodes per iteration, whose overhead dominates on small images).

    On small images (side <= _BOX_MATMUL_SIDE) the differences and their adjoint are products with the
    [n, n] difference matrices: one op each way instead of a pad, slices and, backward, a zeroed buffer,
    four strided updates and the pad's adjoint."""

    @staticmethod
    def forward(ctx, i1: Tensor, warped: Tensor, flow: Tensor, inside: Tensor) -> Tensor:
        m = i1 + warped
        it = warped - i1
        h, w = m.shape[-2:]
        if max(h, w) <= _BOX_MATMUL_SIDE:
            dh, dw = _diff_matrix(h, m.dtype, m.device), _diff_matrix(w, m.dtype, m.device)
            gx = torch.matmul(m, dw.t())
            gy = torch.matmul(dh, m)
        else:
            dh = dw = None
            p = F.pad(m, (1, 1, 1, 1), mode="replicate")
            gx = p[..., 1:-1, 2:] - p[..., 1:-1, :-2]
            gy = p[..., 2:, 1:-1] - p[..., :-2, 1:-1]
        s11, s12, s22 = (gx * gx).sum(1), (gx * gy).sum(1), (gy * gy).sum(1)
        e1, e2 = (gx * it).sum(1), (gy * it).sum(1)
        du0, dv0 = flow[:, 0], flow[:, 1]
        b1 = torch.addcmul(torch.addcmul(-4.0 * e1, s11, du0), s12, dv0)
        b2 = torch.addcmul(torch.addcmul(-4.0 * e2, s12, du0), s22, dv0)
        ctx.diff = (dh, dw)
        ctx.save_for_backward(gx, gy, it, s11, s12, s22, flow, inside)
        return torch.stack((s11, s12, s22, b1, b2), dim=1).mul_(inside)

    @staticmethod
    def backward(ctx, grad: Tensor):
        # Not under an ambient autocast (a backward called inside one): the products stay float32.
        with torch.autocast(grad.device.type, enabled=False):
            return _Maps._backward(ctx, grad)

    @staticmethod
    def _backward(ctx, grad: Tensor):
        gx, gy, it, s11, s12, s22, flow, inside = ctx.saved_tensors
        dh, dw = ctx.diff
        g11, g12, g22, h1, h2 = (grad * inside).unbind(1)
        du0, dv0 = flow[:, 0], flow[:, 1]
        d11 = torch.addcmul(g11, h1, du0).unsqueeze(1)
        d12 = torch.addcmul(torch.addcmul(g12, h1, dv0), h2, du0).unsqueeze(1)
        d22 = torch.addcmul(g22, h2, dv0).unsqueeze(1)
        g_flow = torch.stack((torch.addcmul(h1 * s11, h2, s12), torch.addcmul(h1 * s12, h2, s22)), dim=1)
        h1, h2 = h1.unsqueeze(1), h2.unsqueeze(1)
        # d/dgx = 2 d11 gx + d12 gy - 4 h1 e (likewise gy), d/de = -4 (h1 gx + h2 gy).
        dgx = torch.addcmul(torch.addcmul(gy * d12, it, h1, value=-4.0), gx, d11, value=2.0)
        dgy = torch.addcmul(torch.addcmul(gx * d12, it, h2, value=-4.0), gy, d22, value=2.0)
        dit = torch.addcmul(gx * h1, gy, h2).mul_(-4.0)
        if dw is not None:
            dm = torch.matmul(dgx, dw).add_(torch.matmul(dh.t(), dgy))
        else:
            # Adjoint of the central differences on the replicate-padded image.
            dp = gx.new_zeros(*gx.shape[:-2], gx.shape[-2] + 2, gx.shape[-1] + 2)
            dp[..., 1:-1, 2:] += dgx
            dp[..., 1:-1, :-2] -= dgx
            dp[..., 2:, 1:-1] += dgy
            dp[..., :-2, 1:-1] -= dgy
            dm = torch.ops.aten.replication_pad2d_backward(dp, gx, [1, 1, 1, 1])
        return dm - dit, dm + dit, g_flow, None


class _Solve(torch.autograd.Function):
    """Per-pixel 2x2 solve f = (A + eps I)^-1 (eps f0 - B) as ONE autograd node (hand-written backward: with
    M = A + eps I symmetric, dL/dn = M^-1 g and dL/dM = -(M^-1 g) f^T). Recorded op by op it was ~13 nodes
    per iteration, whose overhead dominates on small images.

    ``boxed`` is [N, 5, H, W] = (a11, a12, a22, -b1, -b2) (window means, 16x units), ``flow`` f0 [N, 2, H, W].
    """

    @staticmethod
    def forward(ctx, boxed: Tensor, flow: Tensor, eps: float) -> Tensor:
        a11, a12, a22, nb1, nb2 = boxed.unbind(1)
        a11 = a11 + eps
        a22 = a22 + eps
        nu = torch.add(nb1, flow[:, 0], alpha=eps)  # eps f0 - B
        nv = torch.add(nb2, flow[:, 1], alpha=eps)
        inv_det = torch.addcmul(a11 * a22, a12, a12, value=-1.0).reciprocal_()
        fu = torch.addcmul(a22 * nu, a12, nv, value=-1.0).mul_(inv_det)
        fv = torch.addcmul(a11 * nv, a12, nu, value=-1.0).mul_(inv_det)
        ctx.eps = eps
        ctx.save_for_backward(a11, a12, a22, inv_det, fu, fv)
        return torch.stack((fu, fv), dim=1)

    @staticmethod
    def backward(ctx, grad: Tensor):
        a11, a12, a22, inv_det, fu, fv = ctx.saved_tensors
        gu, gv = grad.unbind(1)
        gnu = torch.addcmul(a22 * gu, a12, gv, value=-1.0).mul_(inv_det)  # M^-1 g
        gnv = torch.addcmul(a11 * gv, a12, gu, value=-1.0).mul_(inv_det)
        d12 = torch.addcmul(gnu * fv, gnv, fu).neg_()
        g_boxed = torch.stack((-gnu * fu, d12, -gnv * fv, gnu, gnv), dim=1)
        g_flow = torch.stack((gnu, gnv), dim=1) * ctx.eps
        return g_boxed, g_flow, None


class _Level(NamedTuple):
    """Per-level constants of the warping iterations (built once per level, not per iteration)."""

    norm_grid: Tensor  # [1, H, W, 2] grid_sample coordinates of every pixel centre
    to_norm: Tensor  # [2] pixels -> grid_sample units
    low: Tensor  # [1, 2, H, W] smallest flow that stays inside the image (-pixel coordinates)
    high: Tensor  # [1, 2, H, W] largest one


def _level(h: int, w: int, dtype, device) -> _Level:
    grid = _base_grid(h, w, dtype, device)
    # align_corners=True maps -1 / +1 onto the centres of the border pixels: pixel coordinates stay exact.
    to_norm = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], dtype=dtype, device=device)
    upper = torch.tensor([w - 1, h - 1], dtype=dtype, device=device).view(1, 2, 1, 1)
    return _Level(grid.movedim(1, -1) * to_norm - 1.0, to_norm, -grid, upper - grid)


class _Iteration(torch.autograd.Function):
    """One warping iteration (warp, maps, window, solve: see :func:`_lk_iteration`) as ONE autograd node.

    Its backward chains the parts' hand-written backwards (the solve's, the window's adjoint, the maps', and
    grid_sample's own backward kernel). Recorded part by part it was 6-7 nodes per iteration plus their
    Python-side bookkeeping, which on the reward's 32x32 frames cost more than the arithmetic.
    """

    @staticmethod
    def forward(ctx, i1, i2, flow, norm_grid, to_norm, low, high, window: int, eps: float) -> Tensor:
        grid = torch.addcmul(norm_grid, flow.movedim(1, -1), to_norm)
        warped = F.grid_sample(i2, grid, mode="bilinear", padding_mode="border", align_corners=True)
        inside = ((flow >= low) & (flow <= high)).all(1, keepdim=True).to(flow.dtype)
        maps_ctx, solve_ctx = _Saved(), _Saved()
        maps = _Maps.forward(maps_ctx, i1, warped, flow, inside)
        out = _Solve.forward(solve_ctx, _box(maps, window), flow, eps)
        ctx.window, ctx.eps, ctx.diff = window, eps, maps_ctx.diff
        ctx.n_maps = len(maps_ctx.saved_tensors)
        ctx.save_for_backward(*maps_ctx.saved_tensors, *solve_ctx.saved_tensors, i2, grid, to_norm, maps)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        # Not under an ambient autocast (a backward called inside one): the products stay float32.
        with torch.autocast(grad.device.type, enabled=False):
            return _Iteration._backward(ctx, grad)

    @staticmethod
    def _backward(ctx, grad: Tensor):
        saved = ctx.saved_tensors
        k = ctx.n_maps
        i2, grid, to_norm, maps = saved[-4:]
        g_boxed, g_flow = _Solve.backward(_Saved(saved[k:-4], eps=ctx.eps), grad)[:2]
        g_maps = _box_adjoint(g_boxed, ctx.window, maps)
        g_i1, g_warped, g_flow_maps, _ = _Maps._backward(_Saved(saved[:k], diff=ctx.diff), g_maps)
        g_i2, g_grid = torch.ops.aten.grid_sampler_2d_backward(
            g_warped, i2, grid, 0, 1, True, [ctx.needs_input_grad[1], True]
        )
        g_flow = g_flow.add_(g_flow_maps).add_((g_grid * to_norm).movedim(-1, 1))
        return g_i1, g_i2, g_flow, None, None, None, None, None, None


def _lk_iteration(i1: Tensor, i2: Tensor, flow: Tensor, geo: _Level, window: int, eps: float) -> Tensor:
    """One Gauss-Newton warping step of dense Lucas-Kanade at one level: [N, 2, H, W] flow -> refined flow.

    Math (per pixel p, window W(p), colour channels summed): with the second frame warped by the current
    flow f0, the gradient g of the mean of both frames and the mismatch e = warped - first,
        A = box(g g^T),   b = box(g e - g g^T f0) + A f0   (each neighbour's mismatch moved to the centre's
    flow to first order; without it the dense iterations couple neighbours and oscillate), and the update
    solves (A + eps I) df = -b. Written for the new flow directly, f0 + df = (A + eps I)^-1 (eps f0 - B)
    with B = box(g e - g g^T f0): fewer whole-image passes, same values.

    Gradients are plain differences of i1 + warped (4x the central difference of the mean) and the mismatch
    is not scaled: every term of A and of B (and eps) is then 16x its true value, which leaves the solution
    unchanged and saves three full-image multiplications. Every line counts twice on small images under
    autograd (forward and backward op overhead dominates there), hence the fused forms (addcmul, one pad)
    and, with gradients, the whole iteration as one node (:class:`_Iteration`).

    Pixels whose match lies outside the second frame carry no information (border padding would pin their
    flow to the image edge and the iterations would spread that inwards): zero weight (``inside``).
    """
    if torch.is_grad_enabled() and (i1.requires_grad or i2.requires_grad or flow.requires_grad):
        return _Iteration.apply(
            i1, i2, flow, geo.norm_grid, geo.to_norm, geo.low, geo.high, window, 16.0 * eps
        )
    with torch.no_grad():
        return _Iteration.forward(
            _Saved(), i1, i2, flow, geo.norm_grid, geo.to_norm, geo.low, geo.high, window, 16.0 * eps
        )


# Pairs are processed in chunks whose image tensors hold about this many values (2 MiB of float32): the
# ~40 whole-image passes of an iteration then run in cache instead of streaming from memory. Measured on one
# thread, no autograd: 256x256x32 in 370 ms instead of 790 ms, 128x128x32 in 85 ms instead of 105 ms.
_CHUNK_VALUES = 1 << 19


def _lk_pyramid(
    frames: Tensor, n_levels: int, iterations: int, window: int, eps: float, final_iterations: int
) -> Tensor:
    """[B, T, C, H, W] -> [B * (T - 1), 2, H, W]: the coarse-to-fine iterations on every consecutive pair."""
    b, t, c, h, w = frames.shape
    # The pyramid is built once per frame; every consecutive pair is then one item of a batch of
    # N = B * (T - 1): no Python loop over frames.
    # Standard (NCHW-contiguous) layout: the scorer's frames are channels-last views of the decoded video,
    # on which every pass below measured ~1.5x slower.
    pyramid = [frames.reshape(b * t, c, h, w).contiguous()]
    for _ in range(n_levels - 1):
        pyramid.append(_downsample(pyramid[-1]))
    flow = None
    for k, level in enumerate(reversed(pyramid)):
        hl, wl = level.shape[-2:]
        level = level.reshape(b, t, c, hl, wl)
        i1 = level[:, :-1].reshape(b * (t - 1), c, hl, wl)
        i2 = level[:, 1:].reshape(b * (t - 1), c, hl, wl)
        if flow is None:
            flow = torch.zeros(b * (t - 1), 2, hl, wl, dtype=frames.dtype, device=frames.device)
        else:
            flow = _upsample_flow(flow, (hl, wl))
        geo = _level(hl, wl, frames.dtype, frames.device)
        for _ in range(final_iterations if k == n_levels - 1 else iterations):
            flow = _lk_iteration(i1, i2, flow, geo, window, eps)
    return flow


def shrink_frames(frames: Tensor, max_side: int, min_side: int = 2) -> Tensor:
    """[B, T, C, H, W] frames resized so that their long side is `max_side` (each side at least
    `min_side`): bilinear, antialiased, corners aligned, so that pixel i of the small image sits at
    i (W - 1) / (ws - 1) of the large one. The speed knob of the flow and of the residual."""
    b, t, c, h, w = frames.shape
    s = max_side / max(h, w)
    hs, ws = max(min_side, round(h * s)), max(min_side, round(w * s))
    return F.interpolate(frames.reshape(b * t, c, h, w), size=(hs, ws), mode="bilinear", align_corners=True,
                         antialias=True).reshape(b, t, c, hs, ws)


@FLOW_METHODS.register("lk")
def lucas_kanade_flow(
    frames: Tensor,
    *,
    levels: int | None = None,
    iterations: int = 3,
    window: int = 7,
    eps: float = 1e-4,
    min_size: int = 8,
    max_side: int | None = None,
    final_iterations: int = 2,
) -> Tensor:
    """Coarse-to-fine iterative Lucas-Kanade flow (weight-free, differentiable).

    Args:
        frames: ``[B, T, C, H, W]`` float in [0, 1].
        levels: pyramid levels (1 = no pyramid); default: halve until the short side would drop below
            ``min_size`` (at most 6 levels). Each level doubles the largest displacement followed (about
            2 px at the coarsest level).
        iterations: Gauss-Newton warping iterations per level.
        final_iterations: at most this many iterations at the finest level when there is a pyramid. That
            level starts from the coarser level's flow, already within a small fraction of a pixel, and it
            costs 3/4 of the work: with 2 instead of 3 the known-answer errors did not grow (sub-pixel
            textures: mean end-point error 0.010 px both; a disc's constant-acceleration and kink residuals
            0.022 and 0.180 vs 0.022 and 0.180, closed forms 0 and 0.155) and the flow took 25% less time.
        window: side in pixels (odd) of the square Lucas-Kanade window at every level.
        eps: Tikhonov term added to the structure tensor's diagonal (intensity^2 units): in untextured
            regions the flow update goes to 0 instead of dividing by ~0.
        max_side: when given and the frames are larger, the flow is computed on frames resized so that
            their long side is ``max_side`` and scaled back to full-resolution pixels (a speed knob).

    Returns:
        ``[B, T-1, 2, H, W]`` flow in pixels per frame.
    """
    _check_frames(frames)
    check_range("iterations", iterations, 1, 50)
    check_range("final_iterations", final_iterations, 1, 50)
    check_range("eps", eps, 0.0, low_open=True)
    if window < 1 or window % 2 == 0:
        raise InvalidValueError(f"window={window!r} must be an odd number of pixels >= 1")
    b, t, c, h, w = frames.shape
    if max_side is not None:
        check_range("max_side", max_side, 8)
        if max(h, w) > max_side:
            small = shrink_frames(frames, max_side)
            hs, ws = small.shape[-2:]
            flow = lucas_kanade_flow(
                small,
                levels=levels,
                iterations=iterations,
                window=window,
                eps=eps,
                min_size=min_size,
                final_iterations=final_iterations,
            )
            flow = F.interpolate(
                flow.reshape(b * (t - 1), 2, hs, ws), size=(h, w), mode="bilinear", align_corners=True
            )
            scale = torch.tensor(
                [(w - 1) / (ws - 1), (h - 1) / (hs - 1)], dtype=flow.dtype, device=flow.device
            )
            return (flow * scale.view(1, 2, 1, 1)).reshape(b, t - 1, 2, h, w)
    n_levels = _pyramid_levels(h, w, levels, min_size)
    check_range("levels", n_levels, 1, 10)
    final_iterations = iterations if n_levels == 1 else min(iterations, final_iterations)
    # Long clips of large frames run in chunks of consecutive pairs (each chunk with its own pyramid; the
    # shared frame at a chunk boundary is downsampled twice, which costs little).
    per_chunk = max(1, _CHUNK_VALUES // (b * c * h * w))
    # A float32 kernel by design (2x2 solves; on small images its windows and differences are matrix
    # products, which autocast would run in bf16): bf16 training calls it inside autocast.
    with torch.autocast(frames.device.type, enabled=False):
        flows = [
            _lk_pyramid(
                frames[:, s : s + per_chunk + 1], n_levels, iterations, window, eps, final_iterations
            ).reshape(b, -1, 2, h, w)
            for s in range(0, t - 1, per_chunk)
        ]
    return flows[0] if len(flows) == 1 else torch.cat(flows, dim=1)


# ---------------------------------------------------------------------------------------------------------
# RAFT (torchvision, local weights)

_RAFT_CACHE: dict[tuple[str, str, str], torch.nn.Module] = {}


def _load_raft(weights: str | Path, model: str, device: torch.device) -> torch.nn.Module:
    try:
        from torchvision.models import optical_flow as tv_flow
    except (
        ImportError,
        RuntimeError,
    ) as e:  # absent, or broken next to a CPU torch ("torchvision::nms does not exist")
        raise MissingDependencyError("torchvision", "flow", "RAFT optical flow") from e
    if model not in ("raft_small", "raft_large"):
        raise InvalidValueError(f"raft model={model!r} is not known; allowed: raft_small, raft_large")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise InvalidValueError(
            f"RAFT weights={str(path)!r} is not a file; give a local torchvision RAFT state dict (.pth)"
        )
    key = (str(path.resolve()), model, str(device))
    if key not in _RAFT_CACHE:
        net = getattr(tv_flow, model)(weights=None, progress=False)
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        net.eval().requires_grad_(False)
        _RAFT_CACHE[key] = net.to(device)
    return _RAFT_CACHE[key]


@FLOW_METHODS.register("raft")
def raft_flow(
    frames: Tensor,
    *,
    weights: str | Path | None = None,
    model: str = "raft_small",
    num_flow_updates: int = 12,
) -> Tensor:
    """torchvision RAFT flow from a local weights file (differentiable in the frames, weights frozen).

    Args:
        frames: ``[B, T, C, H, W]`` float in [0, 1], C = 3 (a single channel is repeated).
        weights: path to the state dict of ``torchvision.models.optical_flow.<model>`` (e.g. the file
            torchvision's ``Raft_Small_Weights.C_T_V2`` downloads); never fetched at run time.
        model: ``"raft_small"`` or ``"raft_large"``.
        num_flow_updates: RAFT's recurrent refinement steps.

    Returns:
        ``[B, T-1, 2, H, W]`` flow in pixels per frame.
    """
    _check_frames(frames)
    if weights is None:
        raise InvalidValueError("flow method 'raft' needs weights=PATH (a local torchvision RAFT state dict)")
    b, t, c, h, w = frames.shape
    if c not in (1, 3):
        raise InvalidValueError(f"RAFT needs 1 or 3 colour channels; got C={c}")
    net = _load_raft(weights, model, frames.device)
    x = frames if c == 3 else frames.expand(-1, -1, 3, -1, -1)
    # RAFT needs sides divisible by 8 and inputs in [-1, 1] (torchvision's OpticalFlow transform).
    ph, pw = (-h) % 8, (-w) % 8
    x = x.reshape(b * t, 3, h, w) * 2.0 - 1.0
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    x = x.reshape(b, t, 3, h + ph, w + pw)
    first = x[:, :-1].reshape(-1, 3, h + ph, w + pw)
    second = x[:, 1:].reshape(-1, 3, h + ph, w + pw)
    net_dtype = next(net.parameters()).dtype
    flow = net(first.to(net_dtype), second.to(net_dtype), num_flow_updates=num_flow_updates)[-1]
    return flow[..., :h, :w].to(frames.dtype).reshape(b, t - 1, 2, h, w)
