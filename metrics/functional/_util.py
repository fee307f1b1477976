"""Small tensor helpers shared by the kernels (masked reductions, binary morphology)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def masked_mean(x: Tensor, valid: Tensor, dim) -> Tensor:
    """Mean of x over `dim` where valid; NaN where nothing is valid (undefined, never a fake 0)."""
    valid = valid.to(torch.bool)
    n = valid.sum(dim)
    s = torch.where(valid, x, torch.zeros((), dtype=x.dtype, device=x.device)).sum(dim)
    return torch.where(n > 0, s / n.clamp_min(1).to(x.dtype), torch.full_like(s, float("nan")))


def erode(mask: Tensor, k: int = 3) -> Tensor:
    """Binary erosion of [..., H, W] masks with a k x k square; outside the image counts as set."""
    shape = mask.shape
    x = mask.reshape(-1, 1, *shape[-2:]).to(torch.float32)
    # max_pool2d pads with -inf, so -max(-x) treats the border as set: edge pixels stay in the mask.
    y = -F.max_pool2d(-x, k, stride=1, padding=k // 2)
    return (y > 0.5).reshape(shape)


def dilate(mask: Tensor, k: int = 3) -> Tensor:
    """Binary dilation of [..., H, W] masks with a k x k square."""
    shape = mask.shape
    x = mask.reshape(-1, 1, *shape[-2:]).to(torch.float32)
    return (F.max_pool2d(x, k, stride=1, padding=k // 2) > 0.5).reshape(shape)
