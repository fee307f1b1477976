"""Object-mask centroids: the trajectory every track metric compares.

    mask_centroids(masks[B, T, H, W]) -> centroids[B, T, 2] (u, v in pixels), valid[B, T]

u is the column, v the row (OpenCV pixel centres at integer coordinates). A frame with an empty
mask has no centroid: valid is False there and the centroid is NaN.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from newtonbench.metrics.functional._util import mask_bytes


def mask_centroids(masks: Tensor, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """Area-weighted mean pixel position of each mask. Works for soft masks (weights) too.
    Binary masks on a CPU take a compiled pass (`_centroids_compiled`), other devices torch ops."""
    if masks.dim() < 3:
        raise ValueError(f"masks of shape {tuple(masks.shape)}; expected [..., H, W]")
    if not masks.is_floating_point() and masks.device.type == "cpu":
        return _centroids_compiled(masks, dtype)
    return _centroids_torch(masks, dtype)


def _centroids_torch(masks: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    h, w = masks.shape[-2:]
    if masks.is_floating_point():
        m = masks.to(dtype)
        rows, cols = m.sum(-1), m.sum(-2)  # [..., H], [..., W]
    else:
        # Binary masks: pixel counts per row and column summed as integers from a uint8 view (exact,
        # and no float copy of the masks, ~5x faster on a CPU), then the few sums in `dtype`.
        m = masks.to(torch.bool).view(torch.uint8)
        rows, cols = m.sum(-1, dtype=torch.int32).to(dtype), m.sum(-2, dtype=torch.int32).to(dtype)
    vs = torch.arange(h, dtype=dtype, device=masks.device)
    us = torch.arange(w, dtype=dtype, device=masks.device)
    area = rows.sum(-1)
    u = (cols * us).sum(-1)
    v = (rows * vs).sum(-1)
    valid = area > 0
    c = torch.stack([u, v], -1) / area.clamp_min(torch.finfo(dtype).tiny).unsqueeze(-1)
    c = torch.where(valid.unsqueeze(-1), c, torch.full_like(c, float("nan")))
    return c, valid


def _centroids_compiled(masks: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Binary masks on a CPU: the exact integer sums from one compiled pass over each mask's box,
    divided once (`mask_kernels.centroids`, what the extractor and the scorer's ground truth use
    too): in float64 for float64, else in float32 and then cast (the same numbers as the torch path
    in float64, and in float32 while the sums stay below 2**24, e.g. up to 256 x 256 images)."""
    from newtonbench.metrics.functional.mask_kernels import centroids, moments

    c, valid = centroids(moments(mask_bytes(masks)), np.float64 if dtype == torch.float64 else np.float32)
    lead = masks.shape[:-2]
    return torch.from_numpy(c).to(dtype).reshape(*lead, 2), torch.from_numpy(valid).reshape(lead)
