"""`consistency`: temporal coherence of the object's appearance and of the background.

    consistency(frames[B, T, C, H, W] in [0, 1], masks[B, T, H, W], valid[B, T],
                ref_area[B, T] | None, present[B, T] | None) -> [B]
        in [0, 1], higher is better, unitless

Definition, against the first frame (k = 0), over frames k >= 1 (medians, so that a few frames
where the extractor loses part of a camouflaged object do not count as a change of the object):

    d_col   = median_k ||χ_k - χ_0||                        χ_k = mean chromaticity RGB / (R + G + B)
                                                          inside the (eroded) object mask
    d_shape = median_k |log(A_k / A_0) - log(Â_k / Â_0)|     A_k object area; Â_k the ground truth's area
                                                          (so occlusion or leaving the image that the
                                                          ground truth also shows is not penalised)
    d_bg    = mean_k mean_{pixels >= 4 px outside both objects} mean_C |I_k - I_0|   (every 4th pixel
                                                          of the frames given: the scorer gives the
                                                          region the objects visit)
    consistency = exp(-(d_col / 0.1 + d_shape / 1.0 + d_bg / 0.02))

d_col and d_shape run over frames where the object was found (valid) in frame k and frame 0; d_bg
over every `present` frame (frames the generated video covers). The scales are what a clearly
visible change amounts to: 0.1 in chromaticity (grey is 1/3 each), a factor e in area, 0.02 of the
range as mean background change. Chromaticity, not RGB, because a tumbling object's faces turn
towards and away from the light: its brightness changes in the ground truth too, its hue does not. A flickering or drifting background, an object that changes colour,
shrinks or grows score lower; the benchmark's own videos score near 1. NaN when frame 0 has no object.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from newtonbench.metrics.functional._util import (
    as_float,
    channels_last,
    count_set,
    crop_windows,
    dilate,
    erode,
    frame_windows,
    mask_bytes,
    masked_mean,
    value_unit,
)

COLOUR_SCALE = 0.1
SHAPE_SCALE = 1.0
BACKGROUND_SCALE = 0.02


def masked_median(x: Tensor, valid: Tensor) -> Tensor:
    """Median over the last dim of the valid entries (lower middle for even counts); NaN if none."""
    n = valid.sum(-1)
    y = torch.where(valid, x, torch.full_like(x, float("inf"))).sort(-1).values
    k = ((n - 1).clamp_min(0) // 2).unsqueeze(-1)
    med = y.gather(-1, k).squeeze(-1)
    return torch.where(n > 0, med, torch.full_like(med, float("nan")))


def consistency_terms(frames: Tensor, masks: Tensor, valid: Tensor, ref_area: Tensor | None = None,
                      present: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """(d_col, d_shape, d_bg), each [B] (see the module docstring). `frames` may also be uint8
    (0..255, read as value / 255): only the pixels the terms read are converted."""
    return _terms(frames, masks, valid, ref_area, present)[:3]


def _terms(frames: Tensor, masks: Tensor, valid: Tensor, ref_area: Tensor | None,
           present: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """`consistency_terms` and the frames it counts as valid (bool [B, T]: valid and non-empty)."""
    m = masks.to(torch.bool)
    dtype = torch.float32 if not frames.is_floating_point() else frames.dtype
    # the compiled loop on a CPU (for RGB frames), torch ops elsewhere
    compiled = frames.device.type == "cpu" and frames.shape[2] == 3
    stats = _frame_stats_compiled if compiled else _frame_stats_torch
    area_n, mu, per = stats(frames, m, dtype)
    valid = valid.to(torch.bool) & (area_n > 0)
    if present is None:
        present = torch.ones_like(valid)
    pair = valid[:, 1:] & valid[:, :1]
    d_col = masked_median((mu[:, 1:] - mu[:, :1]).square().sum(-1).sqrt(), pair)

    area = area_n.to(dtype)
    lr = torch.log(area[:, 1:].clamp_min(1) / area[:, :1].clamp_min(1))
    if ref_area is not None:
        ra = ref_area.to(dtype)
        ref_ok = (ra[:, 1:] > 0) & (ra[:, :1] > 0)
        lr = lr - torch.where(ref_ok, torch.log(ra[:, 1:].clamp_min(1) / ra[:, :1].clamp_min(1)), torch.zeros_like(lr))
    d_shape = masked_median(lr.abs(), pair)
    d_bg = masked_mean(per, present[:, 1:].to(torch.bool) & present[:, :1].to(torch.bool), dim=-1)
    return d_col, d_shape, d_bg, valid


def _frame_stats_compiled(frames: Tensor, m: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """The CPU kernel (metrics.functional.mask_kernels): per frame, the object's area [B, T], its
    mean chromaticity [B, T, C] and the background change against frame 0 [B, T - 1], in one
    compiled loop over each frame's pixels."""
    from newtonbench.metrics.functional.mask_kernels import consistency_stats

    b, t, c, h, w = frames.shape
    f = channels_last(frames.reshape(b * t, c, h, w), (torch.uint8, torch.float32, torch.float64))
    area, chroma, bg = consistency_stats(f, mask_bytes(m), t, value_unit(frames))
    area = torch.from_numpy(area).reshape(b, t)
    mu = torch.from_numpy(chroma).to(dtype).reshape(b, t, c)
    return area, mu, torch.from_numpy(bg).to(dtype).reshape(b, t)[:, 1:]


def _frame_stats_torch(frames: Tensor, m: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """The same statistics in torch ops, for GPUs: every frame at once."""
    b, t, h, w = m.shape
    c = frames.shape[2]
    area_n = count_set(m)  # [B, T]
    # Colour on the eroded mask: anti-aliased edges blend object and background and move sub-pixel.
    # Per frame on a window around the object (the erosion needs only a 1-px ring around it).
    y0, x0, a, bw = frame_windows(m)
    mc = crop_windows(m, y0, x0, a, bw)
    core = erode(mc)
    core_n = count_set(core)
    core = torch.where((core_n > 0)[..., None, None], core, mc)
    core_n = torch.where(core_n > 0, core_n, area_n)
    # Only the core's pixels are read (gathered as [M, C] colours, summed per frame): the object is
    # a small part of the region the objects visit.
    bi, ti, yi, xi = core.nonzero(as_tuple=True)
    yi, xi = yi + y0[bi, ti], xi + x0[bi, ti]
    pix = as_float(frames.permute(0, 1, 3, 4, 2)[bi, ti, yi, xi], dtype)  # [M, C]
    chroma = pix / pix.sum(-1, keepdim=True).clamp_min(1e-3)
    mu = torch.zeros(b * t, c, dtype=dtype, device=frames.device).index_add_(0, bi * t + ti, chroma)
    mu = mu.reshape(b, t, c) / core_n.unsqueeze(-1).to(dtype).clamp_min(1)  # [B, T, C]

    # The background term on a 4x-subsampled grid: a mean over thousands of pixels needs no more,
    # and it is the costliest term at full resolution. A cell counts as background when no object
    # pixel lies in it or its 8 neighbours (>= 4 px clear of both objects): block "any" on the
    # bool masks (padded to whole 4x4 cells), then a 3x3 dilation.
    both = m[:, 1:] | m[:, :1]
    hc, wc = -(-h // 4), -(-w // 4)
    if (hc * 4, wc * 4) != (h, w):
        both = F.pad(both, (0, wc * 4 - w, 0, hc * 4 - h))
    # OR of the four strided columns, then rows (faster than bool any() over size-4 dims)
    cols = both[..., 0::4] | both[..., 1::4] | both[..., 2::4] | both[..., 3::4]
    cells = cols[..., 0::4, :] | cols[..., 1::4, :] | cols[..., 2::4, :] | cols[..., 3::4, :]
    near = dilate(cells)
    sub = as_float(frames[..., 2::4, 2::4], dtype)
    hs, ws = sub.shape[-2:]
    ow = (~near[..., :hs, :ws]).to(dtype)
    diff = (sub[:, 1:] - sub[:, :1]).abs().mean(2)
    per = (diff * ow).sum((-2, -1)) / ow.sum((-2, -1)).clamp_min(1)
    return area_n, mu, per


def consistency(frames: Tensor, masks: Tensor, valid: Tensor, ref_area: Tensor | None = None,
                present: Tensor | None = None) -> Tensor:
    d_col, d_shape, d_bg, counted = _terms(frames, masks, valid, ref_area, present)
    # A clip whose only valid frame is the first has no colour/shape change to measure: 0 distance.
    d_col = torch.nan_to_num(d_col, nan=0.0)
    d_shape = torch.nan_to_num(d_shape, nan=0.0)
    d_bg = torch.nan_to_num(d_bg, nan=0.0)
    out = torch.exp(-(d_col / COLOUR_SCALE + d_shape / SHAPE_SCALE + d_bg / BACKGROUND_SCALE))
    # NaN where frame 0 has no object (invalid or empty): nothing to compare against
    return torch.where(counted[:, 0], out, torch.full_like(out, float("nan")))
