"""`consistency`: temporal coherence of the object's appearance and of the background.

    consistency(frames[B, T, C, H, W] in [0, 1], masks[B, T, H, W], valid[B, T],
                ref_area[B, T] | None, present[B, T] | None) -> [B]
        in [0, 1], higher is better, unitless

Definition, against the first frame (k = 0), over frames k >= 1:

    d_col   = mean_k ||μ_k - μ_0||                        μ_k = mean RGB inside the (eroded) object mask
    d_shape = mean_k |log(A_k / A_0) - log(Â_k / Â_0)|     A_k object area; Â_k the ground truth's area
                                                          (so occlusion or leaving the image that the
                                                          ground truth also shows is not penalised)
    d_bg    = mean_k mean_{pixels outside both objects} mean_C |I_k - I_0|
    consistency = exp(-(d_col / 0.05 + d_shape / 0.25 + d_bg / 0.02))

d_col and d_shape run over frames where the object was found (valid) in frame k and frame 0; d_bg
over every `present` frame (frames the generated video covers). The scales are what a clearly
visible change amounts to: 0.05 of the RGB range (13 levels), a quarter in log-area, 0.02 of the
range as mean background change. A flickering or drifting background, an object that changes colour,
shrinks or grows score lower; the benchmark's own videos score near 1. NaN when frame 0 has no object.
"""

from __future__ import annotations

import torch
from torch import Tensor

from newtonbench.metrics.functional._util import dilate, erode, masked_mean

COLOUR_SCALE = 0.05
SHAPE_SCALE = 0.25
BACKGROUND_SCALE = 0.02


def consistency_terms(frames: Tensor, masks: Tensor, valid: Tensor, ref_area: Tensor | None = None,
                      present: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """(d_col, d_shape, d_bg), each [B] (see the module docstring)."""
    x = frames.to(torch.float32) if not frames.is_floating_point() else frames
    m = masks.to(torch.bool)
    valid = valid.to(torch.bool) & (m.sum((-2, -1)) > 0)
    if present is None:
        present = torch.ones_like(valid)
    # Colour on the eroded mask: anti-aliased edges blend object and background and move sub-pixel.
    core = erode(m)
    core = torch.where((core.sum((-2, -1)) > 0)[..., None, None], core, m)
    cw = core.unsqueeze(2).to(x.dtype)  # [B, T, 1, H, W]
    mu = (x * cw).sum((-2, -1)) / cw.sum((-2, -1)).clamp_min(1)  # [B, T, C]
    pair = valid[:, 1:] & valid[:, :1]
    d_col = masked_mean((mu[:, 1:] - mu[:, :1]).square().sum(-1).sqrt(), pair, dim=-1)

    area = m.sum((-2, -1)).to(x.dtype)
    lr = torch.log(area[:, 1:].clamp_min(1) / area[:, :1].clamp_min(1))
    if ref_area is not None:
        ra = ref_area.to(x.dtype)
        ref_ok = (ra[:, 1:] > 0) & (ra[:, :1] > 0)
        lr = lr - torch.where(ref_ok, torch.log(ra[:, 1:].clamp_min(1) / ra[:, :1].clamp_min(1)), torch.zeros_like(lr))
    d_shape = masked_mean(lr.abs(), pair, dim=-1)

    outside = ~dilate(m[:, 1:] | m[:, :1], 5)  # [B, T-1, H, W]
    diff = (x[:, 1:] - x[:, :1]).abs().mean(2)
    ow = outside.to(x.dtype)
    per = (diff * ow).sum((-2, -1)) / ow.sum((-2, -1)).clamp_min(1)
    d_bg = masked_mean(per, present[:, 1:].to(torch.bool) & present[:, :1].to(torch.bool), dim=-1)
    return d_col, d_shape, d_bg


def consistency(frames: Tensor, masks: Tensor, valid: Tensor, ref_area: Tensor | None = None,
                present: Tensor | None = None) -> Tensor:
    d_col, d_shape, d_bg = consistency_terms(frames, masks, valid, ref_area, present)
    # A clip whose only valid frame is the first has no colour/shape change to measure: 0 distance.
    d_col = torch.nan_to_num(d_col, nan=0.0)
    d_shape = torch.nan_to_num(d_shape, nan=0.0)
    d_bg = torch.nan_to_num(d_bg, nan=0.0)
    out = torch.exp(-(d_col / COLOUR_SCALE + d_shape / SHAPE_SCALE + d_bg / BACKGROUND_SCALE))
    first = valid[:, 0].to(torch.bool) & (masks[:, 0].to(torch.bool).sum((-2, -1)) > 0)
    return torch.where(first, out, torch.full_like(out, float("nan")))
