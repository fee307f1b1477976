"""`iou`: mask intersection over union, as PISA defines it.

    mask_iou_per_frame(pred[B, T, H, W], target[B, T, H, W]) -> [B, T]   in [0, 1]
    mask_iou(pred, target, valid[B, T] | None) -> [B]                      higher is better

Per frame |P ∩ G| / |P ∪ G|; a frame where both masks are empty counts 1 (PISA's
binary_mask_IOU), a frame where only one is empty counts 0. Mean over the valid frames.
"""

from __future__ import annotations

import torch
from torch import Tensor

from newtonbench.metrics.functional._util import count_set, mask_bytes, masked_mean


def mask_iou_per_frame(pred: Tensor, target: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    p, g = pred.to(torch.bool), target.to(torch.bool)
    counts = _overlap_compiled if p.device.type == "cpu" else _overlap_torch
    inter, union = (x.to(dtype) for x in counts(p, g))
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def _overlap_compiled(p: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
    """|P ∩ G| and |P ∪ G| per frame on a CPU: one compiled pass over both masks
    (metrics.functional.mask_kernels), not four tensor ops."""
    from newtonbench.metrics.functional.mask_kernels import overlap_counts

    inter, union = overlap_counts(mask_bytes(p), mask_bytes(g))
    return torch.from_numpy(inter).reshape(p.shape[:-2]), torch.from_numpy(union).reshape(p.shape[:-2])


def _overlap_torch(p: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
    """The same in torch ops, for GPUs."""
    return count_set(p & g), count_set(p | g)


def mask_iou(pred: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    per = mask_iou_per_frame(pred, target)
    if valid is None:
        valid = torch.ones_like(per, dtype=torch.bool)
    return masked_mean(per, valid, dim=-1)
