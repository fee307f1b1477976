"""`chamfer`: symmetric chamfer distance between generated and ground-truth masks, as PISA defines it.

    chamfer_per_frame(pred[B, T, H, W], target[B, T, H, W]) -> [B, T]   pixels, NaN where a mask is empty
    chamfer_distance(pred, target, valid[B, T] | None) -> [B]            pixels, >= 0, lower is better

Per frame: mean over p in P of min_{q in G} ||p - q|| plus mean over q in G of min_{p in P} ||p - q||
(PISA sums the two directed means; pixel positions as (row, column), Euclidean). PISA's scipy
cKDTree has no answer for an empty mask, so such frames are skipped (NaN), and the clip's value is
the mean over the remaining valid frames.

Exact, without a k-d tree: for a point p outside G, its nearest point of G lies on G's boundary
(a pixel of G with an 8-neighbour outside G; any interior pixel has a neighbour closer to p). So
only P \\ G points need distances, and only to ∂G. On a CPU a compiled loop per frame does that
(metrics.functional.mask_kernels); on other devices torch ops over all frames at once,
cdist([N, |P \\ G|, 2], [N, |∂G|, 2]) instead of |P| x |G|.
"""

from __future__ import annotations

import torch
from torch import Tensor

from newtonbench.metrics.functional._util import (
    count_set,
    crop_windows,
    erode,
    frame_windows,
    mask_bytes,
    masked_mean,
)

# Upper bound on the elements of one pairwise-distance block (float32: 64 MiB). Frames are processed
# in groups under this bound: a memory limit, not a per-frame loop (one group in the usual case).
_BLOCK_ELEMENTS = 1 << 24


def _gather_points(sel: Tensor, w: int) -> tuple[Tensor, Tensor]:
    """[N, HW] bool -> coords [N, K, 2] (row, col) of the set pixels, padded; ok [N, K]."""
    n = sel.shape[0]
    # (frame, flat index), frame-major: each frame's pixels in raster order
    frame, flat = sel.nonzero(as_tuple=True)
    counts = torch.bincount(frame, minlength=n)  # from the points: no second pass over the masks
    k = max(int(counts.max()) if n else 0, 1)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(frame), device=sel.device) - starts[frame]
    pts = torch.zeros(n, k, 2, dtype=torch.float32, device=sel.device)
    pts[frame, rank] = torch.stack([flat // w, flat % w], -1).to(torch.float32)
    ok = torch.arange(k, device=sel.device).unsqueeze(0) < counts.unsqueeze(1)
    return pts, ok


def _directed_sum(a: Tensor, b: Tensor, w: int) -> Tensor:
    """Sum over p in A of min_{q in B} ||p - q|| for [N, HW] bool masks (B non-empty where used)."""
    n = a.shape[0]
    h = a.shape[1] // w
    outside = a & ~b
    boundary = (b & ~erode(b.reshape(n, h, w)).reshape(n, -1))
    pa, oka = _gather_points(outside, w)
    pb, okb = _gather_points(boundary, w)
    total = torch.zeros(n, dtype=torch.float32, device=a.device)
    step = max(1, _BLOCK_ELEMENTS // max(1, pa.shape[1] * pb.shape[1]))
    for s in range(0, n, step):
        d = torch.cdist(pa[s:s + step], pb[s:s + step])
        d = d.masked_fill(~okb[s:s + step].unsqueeze(1), float("inf")).amin(-1)
        total[s:s + step] = torch.where(oka[s:s + step], d, torch.zeros_like(d)).sum(-1)
    return total


def chamfer_per_frame(pred: Tensor, target: Tensor) -> Tensor:
    if pred.shape != target.shape or pred.dim() < 3:
        raise ValueError(f"masks of shapes {tuple(pred.shape)} and {tuple(target.shape)}; expected equal [..., H, W]")
    if pred.device.type == "cpu":
        return _per_frame_compiled(pred, target)
    return _per_frame_torch(pred, target)


def _per_frame_compiled(pred: Tensor, target: Tensor) -> Tensor:
    """The CPU kernel: one compiled loop over each frame's pixels (metrics.functional.mask_kernels)."""
    from newtonbench.metrics.functional.mask_kernels import chamfer_frames

    return torch.from_numpy(chamfer_frames(mask_bytes(pred), mask_bytes(target))).to(torch.float32).reshape(pred.shape[:-2])


def _per_frame_torch(pred: Tensor, target: Tensor) -> Tensor:
    """The same in torch ops, for GPUs: every frame's points at once, against padded point sets."""
    lead = pred.shape[:-2]
    p, g = pred.to(torch.bool), target.to(torch.bool)
    # Distances are translation invariant and boundaries need only a 1-px ring: work per frame
    # on a window around the two masks, not on the whole image.
    y0, x0, h, w = frame_windows(p | g)
    p, g = crop_windows(p, y0, x0, h, w), crop_windows(g, y0, x0, h, w)
    p, g = p.reshape(-1, h * w), g.reshape(-1, h * w)
    np_, ng = count_set(p, 1), count_set(g, 1)
    both = (np_ > 0) & (ng > 0)
    # Frames with an empty mask give inf in one direction (no point to be near): NaN below.
    # Both directions in one pass (the 2N frames [P; G] against [G; P]): half the kernel launches.
    n = p.shape[0]
    s = _directed_sum(torch.cat([p, g]), torch.cat([g, p]), w)
    d = s[:n] / np_.clamp_min(1) + s[n:] / ng.clamp_min(1)
    d = torch.where(both, d, torch.full_like(d, float("nan")))
    return d.reshape(lead)


def chamfer_distance(pred: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    per = chamfer_per_frame(pred, target)
    ok = per.isfinite() if valid is None else (valid.to(torch.bool) & per.isfinite())
    return masked_mean(per, ok, dim=-1)
