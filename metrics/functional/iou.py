"""`iou`: mask intersection over union, as PISA defines it.

    mask_iou_per_frame(pred[B, T, H, W], target[B, T, H, W]) -> [B, T]   in [0, 1]
    mask_iou(pred, target, valid[B, T] | None) -> [B]                      higher is better

Per frame |P ∩ G| / |P ∪ G|; a frame where both masks are empty counts 1 (PISA's
binary_mask_IOU), a frame where only one is empty counts 0. Mean over the valid frames.
"""

from __future__ import annotations

import torch
from torch import Tensor

from newtonbench.metrics.functional._util import count_set, masked_mean


def mask_iou_per_frame(pred: Tensor, target: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    p, g = pred.to(torch.bool), target.to(torch.bool)
    inter = count_set(p & g).to(dtype)
    union = count_set(p | g).to(dtype)
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def mask_iou(pred: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    per = mask_iou_per_frame(pred, target)
    if valid is None:
        valid = torch.ones_like(per, dtype=torch.bool)
    return masked_mean(per, valid, dim=-1)
