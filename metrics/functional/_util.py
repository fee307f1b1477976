"""Small tensor helpers shared by the kernels (masked reductions, binary morphology)."""

from __future__ import annotations

import torch
from torch import Tensor


def masked_mean(x: Tensor, valid: Tensor, dim) -> Tensor:
    """Mean of x over `dim` where valid; NaN where nothing is valid (undefined, never a fake 0)."""
    valid = valid.to(torch.bool)
    n = valid.sum(dim)
    s = torch.where(valid, x, torch.zeros((), dtype=x.dtype, device=x.device)).sum(dim)
    return torch.where(n > 0, s / n.clamp_min(1).to(x.dtype), torch.full_like(s, float("nan")))


def _shift_reduce(mask: Tensor, k: int, dilation: bool) -> Tensor:
    """k x k square erosion (AND) or dilation (OR) of a bool [..., H, W] tensor, separably, with
    shifted views: byte-wise logic is several times faster on CPU than max_pool2d on floats."""
    m = mask.to(torch.bool)
    r = k // 2
    h, w = m.shape[-2:]
    op = torch.logical_or if dilation else torch.logical_and
    # Outside the image counts as unset for dilation and as set for erosion (edge pixels stay).
    pad = torch.full((*m.shape[:-2], h + 2 * r, w), not dilation, dtype=torch.bool, device=m.device)
    pad[..., r:r + h, :] = m
    rows = pad[..., 0:h, :]
    for d in range(1, k):
        rows = op(rows, pad[..., d:d + h, :])
    pad = torch.full((*m.shape[:-2], h, w + 2 * r), not dilation, dtype=torch.bool, device=m.device)
    pad[..., :, r:r + w] = rows
    out = pad[..., :, 0:w]
    for d in range(1, k):
        out = op(out, pad[..., :, d:d + w])
    return out


def erode(mask: Tensor, k: int = 3) -> Tensor:
    """Binary erosion of [..., H, W] masks with a k x k square; outside the image counts as set."""
    return _shift_reduce(mask, k, dilation=False)


def dilate(mask: Tensor, k: int = 3) -> Tensor:
    """Binary dilation of [..., H, W] masks with a k x k square."""
    return _shift_reduce(mask, k, dilation=True)


def occupied_box(mask: Tensor, margin: int = 1) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1): the box of the pixels set in any of the [..., H, W] masks, grown by
    `margin` inside the image; None when no pixel is set.

    Kernels that only look at mask pixels and their 3x3 neighbourhood (erosion, boundaries) give
    the same answer on this crop with margin 1: the ring around the mask stays in the crop where
    it exists, and where the box meets the image's edge the crop's edge is the image's edge.
    """
    # max over uint8 views: torch's bool any() over the frames is ~50x slower on a CPU
    any_ = mask.to(torch.bool).reshape(-1, *mask.shape[-2:]).view(torch.uint8).amax(0)
    rows, cols = any_.amax(1).nonzero().flatten(), any_.amax(0).nonzero().flatten()
    if len(rows) == 0:
        return None
    h, w = any_.shape
    return (max(0, int(rows[0]) - margin), min(h, int(rows[-1]) + 1 + margin),
            max(0, int(cols[0]) - margin), min(w, int(cols[-1]) + 1 + margin))


def count_set(mask: Tensor, dims: int = 2) -> Tensor:
    """int64 count of the set pixels of a bool mask over its last `dims` dims. A sum of a uint8
    view into int32: torch's bool sum and count_nonzero convert or compare the whole mask first
    (2-3x slower on a CPU). Exact below 2**31 pixels per count."""
    flat = mask.to(torch.bool).flatten(-dims) if dims > 1 else mask.to(torch.bool)
    return flat.view(torch.uint8).sum(-1, dtype=torch.int32).to(torch.int64)
