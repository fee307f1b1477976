"""Object-mask centroids: the trajectory every track metric compares.

    mask_centroids(masks[B, T, H, W]) -> centroids[B, T, 2] (u, v in pixels), valid[B, T]

u is the column, v the row (OpenCV pixel centres at integer coordinates). A frame with an empty
mask has no centroid: valid is False there and the centroid is NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor


def mask_centroids(masks: Tensor, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """Area-weighted mean pixel position of each mask. Works for soft masks (weights) too."""
    if masks.dim() < 3:
        raise ValueError(f"masks of shape {tuple(masks.shape)}; expected [..., H, W]")
    m = masks.to(dtype)
    h, w = m.shape[-2:]
    vs = torch.arange(h, dtype=dtype, device=m.device)
    us = torch.arange(w, dtype=dtype, device=m.device)
    area = m.sum((-2, -1))
    u = (m.sum(-2) * us).sum(-1)
    v = (m.sum(-1) * vs).sum(-1)
    valid = area > 0
    c = torch.stack([u, v], -1) / area.clamp_min(torch.finfo(dtype).tiny).unsqueeze(-1)
    c = torch.where(valid.unsqueeze(-1), c, torch.full_like(c, float("nan")))
    return c, valid
