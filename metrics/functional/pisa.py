"""PISA's exact L2 / Chamfer / IoU (vision-x-nyu/pisa-experiments, utils/metrics.py), for
`--pisa-compatible`, so that numbers can be set beside PISA's published ones.

Inputs are already aligned PISA's way (generated frame i against ground-truth frame
int(i * fps_gt / fps_pred); see `pisa_frame_indices`). All normalised by sqrt(2) * H, H the image
height (PISA passes mask.shape[2]), lower is better except IoU.

    pisa_frame_indices(n_pred, n_gt, fps_pred, fps_gt) -> (pred_idx, gt_idx)  LongTensors
    pisa_l2(pred_c[B, T, 2], gt_c[B, T, 2], valid[B, T], height) -> [B]
        mean over frames and both coordinates of |c - ĉ| (np.sqrt(x**2) in PISA), / (sqrt(2) H)
    pisa_chamfer(pred[B, T, H, W], gt[B, T, H, W], valid, height=H) -> [B]   chamfer_per_frame / (sqrt(2) height)
    pisa_iou(pred, gt, valid) -> [B]                                mask_iou
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from newtonbench.metrics.functional._util import masked_mean
from newtonbench.metrics.functional.chamfer import chamfer_per_frame
from newtonbench.metrics.functional.iou import mask_iou


def pisa_frame_indices(n_pred: int, n_gt: int, fps_pred: float, fps_gt: float) -> tuple[Tensor, Tensor]:
    gt = [int(i * (fps_gt / fps_pred)) for i in range(n_pred)]  # scalars only: PISA's exact int()
    keep = [g < n_gt for g in gt]
    gt_idx = torch.tensor([g for g, k in zip(gt, keep) if k], dtype=torch.long)
    pred_idx = torch.arange(len(gt_idx), dtype=torch.long)
    return pred_idx, gt_idx


def pisa_l2(pred_c: Tensor, gt_c: Tensor, valid: Tensor, height) -> Tensor:
    d = (pred_c - gt_c).abs()  # [B, T, 2]
    ok = valid.to(torch.bool).unsqueeze(-1) & d.isfinite()
    mean = masked_mean(d.flatten(1), ok.flatten(1), dim=-1)
    return mean / (math.sqrt(2.0) * torch.as_tensor(height, dtype=mean.dtype, device=mean.device))


def pisa_chamfer(pred: Tensor, gt: Tensor, valid: Tensor | None = None, height: int | None = None) -> Tensor:
    """`height`: the image's, where the masks are a crop of it (the distances do not change when
    the crop holds both masks and a 1-px ring around them)."""
    per = chamfer_per_frame(pred, gt)
    ok = per.isfinite() if valid is None else valid.to(torch.bool) & per.isfinite()
    return masked_mean(per, ok, dim=-1) / (math.sqrt(2.0) * (height or pred.shape[-2]))


def pisa_iou(pred: Tensor, gt: Tensor, valid: Tensor | None = None) -> Tensor:
    return mask_iou(pred, gt, valid)
