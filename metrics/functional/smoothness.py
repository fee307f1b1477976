"""`smoothness`: how much of the object's frame-to-frame motion is smooth Newtonian motion.

    smoothness(track[B, T, 2], valid[B, T], segments[B, T] | None, eps=0.05**2) -> [B]
        in [0, 1], higher is better, unitless

Definition. Within each constant-force segment (the ground truth's frames between contacts and
changes of force; one segment when `segments` is None) the track is fitted by least squares with a
quadratic in time, ĉ — the motion Newton's laws allow there. With r = c - ĉ the residual and Δ the
step between consecutive valid frames,

    E_fit = sum_k ||Δĉ_k||^2      E_res = sum_k ||Δr_k||^2      smoothness = E_fit / (E_fit + E_res + eps n)

with n the number of steps and eps = (0.05 px)^2 the extraction noise floor. A track that moves
under constant acceleration scores 1; jitter, frame shuffles and jumps put energy into the residual
and score lower; an object that does not move has no smooth motion at all and scores ~0 (this is
what separates a frozen video from a physical one). NaN when the track has no valid step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def piecewise_quadratic_fit(track: Tensor, valid: Tensor, segments: Tensor | None = None) -> Tensor:
    """Least-squares quadratic in frame index per segment: [B, T, 2] fitted track (float64)."""
    b, t, _ = track.shape
    x = torch.nan_to_num(track.to(torch.float64))
    if segments is None:
        segments = torch.zeros(b, t, dtype=torch.long, device=track.device)
    nseg = int(segments.max()) + 1 if segments.numel() else 1
    w = F.one_hot(segments.long().clamp_min(0), nseg).permute(0, 2, 1).to(torch.float64)  # [B, S, T]
    w = w * valid.to(torch.float64).unsqueeze(1)
    k = torch.arange(t, dtype=torch.float64, device=track.device)
    n = w.sum(-1, keepdim=True)
    centre = (w * k).sum(-1, keepdim=True) / n.clamp_min(1e-12)
    tau = k - centre  # [B, S, T]
    basis = torch.stack([torch.ones_like(tau), tau, tau**2], -1)  # [B, S, T, 3]
    bw = basis * w.unsqueeze(-1)
    m = bw.transpose(-1, -2) @ basis  # [B, S, 3, 3]
    rhs = bw.transpose(-1, -2) @ x.unsqueeze(1)  # [B, S, 3, 2]
    # pinv gives the exact (minimum-norm) fit for segments of one or two frames.
    coef = torch.linalg.pinv(m) @ rhs
    fitted = basis @ coef  # [B, S, T, 2]
    member = F.one_hot(segments.long().clamp_min(0), nseg).to(torch.float64)  # [B, T, S]
    return (member.permute(0, 2, 1).unsqueeze(-1) * fitted).sum(1)


def smoothness(track: Tensor, valid: Tensor, segments: Tensor | None = None, eps: float = 0.05**2) -> Tensor:
    valid = valid.to(torch.bool) & track.isfinite().all(-1)
    fit = piecewise_quadratic_fit(track, valid, segments)
    res = torch.nan_to_num(track.to(torch.float64)) - fit
    step = (valid[:, 1:] & valid[:, :-1]).to(torch.float64)
    e_fit = ((fit[:, 1:] - fit[:, :-1]).square().sum(-1) * step).sum(-1)
    e_res = ((res[:, 1:] - res[:, :-1]).square().sum(-1) * step).sum(-1)
    n = step.sum(-1)
    out = e_fit / (e_fit + e_res + eps * n).clamp_min(1e-300)
    out = torch.where(n > 0, out, torch.full_like(out, float("nan")))
    return out.to(track.dtype)
