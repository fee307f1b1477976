"""Small tensor helpers shared by the kernels (masked reductions, binary morphology)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def as_float(x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """uint8 images (0..255) -> float in [0, 1] (float32 unless `dtype`); float images as they are
    (or cast to `dtype`). The kernels take decoded uint8 frames and convert only what they read."""
    if x.dtype == torch.uint8:
        return x.to(dtype or torch.float32).div_(255.0)
    return x if dtype is None else x.to(dtype)


def value_unit(x: Tensor) -> float:
    """What 1.0 is in an image's values: 255 for uint8, 1 for floats in [0, 1]."""
    return 255.0 if x.dtype == torch.uint8 else 1.0


def channels_last(x: Tensor, dtypes=(torch.uint8, torch.float32)) -> np.ndarray:
    """CPU images [..., C, H, W] as a C-contiguous NumPy array [..., H, W, C], the compiled kernels'
    layout (the decoder's, which `bench_grid_frames` and the scorer's crops keep, so usually a view,
    no copy); values of a type outside `dtypes` (the kernels' types) as float32."""
    x = x.detach().movedim(-3, -1)
    return (x if x.dtype in dtypes else x.to(torch.float32)).contiguous().numpy()


def mask_bytes(mask: Tensor) -> np.ndarray:
    """[..., H, W] masks as the compiled CPU kernels take them: a C-contiguous uint8 NumPy array
    [N, H, W] of 0 and 1 (N the product of the leading dims); no copy for a contiguous CPU bool
    tensor."""
    h, w = mask.shape[-2:]
    n = math.prod(mask.shape[:-2])
    return mask.to(torch.bool).cpu().reshape(n, h, w).contiguous().view(torch.uint8).numpy()


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


def any_set(mask: Tensor, dims: int = 2) -> Tensor:
    """bool: whether any pixel of a bool mask is set over its last `dims` dims. A max, not torch's
    bool any() (~30x slower over long rows on a CPU): over the rows read as int64 words (8 pixels
    each) where the layout allows (~4x faster again than bytes), else over a uint8 view."""
    m = mask.to(torch.bool)
    m = (m.flatten(-dims) if dims > 1 else m).view(torch.uint8)
    if m.shape[-1] % 8 == 0 and m.is_contiguous() and m.storage_offset() % 8 == 0 and m.numel():
        return m.view(torch.int64).amax(-1) != 0
    return m.amax(-1).to(torch.bool)


def mask_boxes(mask: Tensor) -> Tensor:
    """long [..., 4]: (y0, y1, x0, x1), the box of the set pixels of each [..., H, W] mask
    (half-open); zeros where a mask is empty."""
    if mask.numel() == 0:
        return torch.zeros(*mask.shape[:-2], 4, dtype=torch.long, device=mask.device)
    return (_boxes_compiled if mask.device.type == "cpu" else _boxes_torch)(mask)


def moments_compiled(mask: Tensor) -> Tensor:
    """int64 [..., 7] per [..., H, W] mask on a CPU: (area, sum of x, sum of y, y0, y1, x0, x1) of its
    set pixels, from one compiled pass (`mask_kernels.moments`); what `mask_boxes` and `count_set`
    read there instead of a dozen tensor ops each."""
    from newtonbench.metrics.functional.mask_kernels import moments

    return torch.from_numpy(moments(mask_bytes(mask))).reshape(*mask.shape[:-2], 7)


def _boxes_compiled(mask: Tensor) -> Tensor:
    return moments_compiled(mask)[..., 3:]


def _boxes_torch(mask: Tensor) -> Tensor:
    # maxima, not torch's bool any() (much slower on a CPU); argmax needs numbers, not bools
    m = mask.to(torch.bool)
    rows, cols = any_set(m, 1).view(torch.uint8), m.view(torch.uint8).amax(-2)  # [..., H], [..., W]
    h, w = rows.shape[-1], cols.shape[-1]
    box = torch.stack([rows.argmax(-1), h - rows.flip(-1).argmax(-1), cols.argmax(-1), w - cols.flip(-1).argmax(-1)], -1)
    return box.masked_fill(rows.amax(-1, keepdim=True) == 0, 0)


def frame_windows(mask: Tensor, margin: int = 1) -> tuple[Tensor, Tensor, int, int]:
    """One window size for all frames of the [..., H, W] masks, placed per frame around that
    frame's set pixels grown by `margin` inside the image: (y0 [...], x0 [...], a, b), the
    windows' top-left corners and sides. Frames with no pixel set get (0, 0).

    Kernels that only look at mask pixels and their 3x3 neighbourhood (erosion, boundaries, point
    distances, which are translation invariant) give the same answer per frame on these windows
    with margin 1: the ring around the mask stays in the window where it exists, and where a
    window meets the image's edge its edge is the image's edge. An object's windows are a few
    percent of the region it crosses over a clip.
    """
    h, w = mask.shape[-2:]
    ylo, yhi, xlo, xhi = mask_boxes(mask).unbind(-1)
    a = min(h, int((yhi - ylo).amax()) + 2 * margin) if ylo.numel() else h
    b = min(w, int((xhi - xlo).amax()) + 2 * margin) if xlo.numel() else w
    return (ylo - margin).clamp(0, h - a), (xlo - margin).clamp(0, w - b), a, b


def crop_windows(x: Tensor, y0, x0, a: int, b: int) -> Tensor:
    """x[i, ..., y0[i]:y0[i] + a, x0[i]:x0[i] + b] for every frame i: the corners y0, x0 (tensors or
    lists) index x's leading dims, any dims between them and the last two (colour) ride along.
    Returns [*lead, ..., a, b].

    Every a x b window of a frame is a strided view (two unfolds, no copy); one gather then picks
    each frame's window: one kernel, not a slice per frame (~4x faster for masks on a CPU)."""
    y0, x0 = torch.as_tensor(y0, device=x.device), torch.as_tensor(x0, device=x.device)
    lead = x.shape[: y0.dim()]
    flat = x.reshape(-1, *x.shape[y0.dim():])
    views = flat.unfold(-2, a, 1).unfold(-2, b, 1)  # [K, ..., H - a + 1, W - b + 1, a, b]
    ride = (slice(None),) * (flat.dim() - 3)
    wins = views[(torch.arange(flat.shape[0], device=x.device), *ride, y0.flatten(), x0.flatten())]
    return wins.reshape(*lead, *x.shape[y0.dim():-2], a, b)


def count_set(mask: Tensor, dims: int = 2) -> Tensor:
    """int64 count of the set pixels of a bool mask over its last `dims` dims. Exact below 2**31
    pixels per count. Over [H, W] on a CPU from the compiled moments: the torch path's int32 sum
    converts the whole mask first, into a temporary 4x its size whose fresh pages cost more than
    the count (the mask metrics' intermittent 1.1 ms a clip)."""
    if dims == 2 and mask.device.type == "cpu" and mask.dim() >= 2 and mask.numel():
        return _count_compiled(mask)
    return _count_torch(mask, dims)


def _count_compiled(mask: Tensor) -> Tensor:
    return moments_compiled(mask)[..., 0].clone()


def _count_torch(mask: Tensor, dims: int = 2) -> Tensor:
    # A sum of a uint8 view into int32: torch's bool sum and count_nonzero convert or compare the
    # whole mask first (2-3x slower on a CPU).
    flat = mask.to(torch.bool).flatten(-dims) if dims > 1 else mask.to(torch.bool)
    return flat.view(torch.uint8).sum(-1, dtype=torch.int32).to(torch.int64)
