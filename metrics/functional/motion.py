"""Kinematics of centroid tracks: velocity / acceleration errors and the fitted acceleration.

    velocity_rmse(pred[B, T, 2], target[B, T, 2], valid[B, T], fps[B], scale[B, 2] | None) -> [B]
    acceleration_rmse(same) -> [B]
        finite differences on the benchmark's time grid: v_k = (c_{k+1} - c_k) fps,
        a_k = (c_{k+1} - 2 c_k + c_{k-1}) fps^2, over steps whose frames are all valid in both tracks.
        `scale` multiplies each axis (pixels -> metres: (Z / fx, Z / fy)); units px/s, px/s^2 or m/s, m/s^2.
    fit_acceleration(times[B, N], pos[B, N, 2], weight[B, N]) -> [B, 2]
        weighted least squares of pos(t) = p0 + v t + a t^2 / 2; returns a (units of pos per s^2);
        NaN where fewer than 3 samples carry weight.
    pixel_accel_to_world(accel_px[B, 2], depth_m[B], fx[B], fy[B]) -> [B, 2]   (a_x, a_z), z up
    accel_ratio(fit[B, 2], true[B, 2]) -> [B]   ||fit|| / ||true||; 1 = the model's gravity is right

All lower-is-better except accel_ratio (target 1). Batched, device and dtype agnostic.
"""

from __future__ import annotations

import torch
from torch import Tensor

from newtonbench.metrics.functional._util import masked_mean


def _as_batch(x, like: Tensor) -> Tensor:
    x = torch.as_tensor(x, dtype=like.dtype, device=like.device)
    return x.reshape(-1) if x.dim() else x.expand(like.shape[0])


def _rmse(diff: Tensor, ok: Tensor, scale: Tensor | None) -> Tensor:
    if scale is not None:
        diff = diff * scale.to(diff.dtype).unsqueeze(1)
    sq = diff.square().sum(-1)
    return masked_mean(sq, ok & sq.isfinite(), dim=-1).sqrt()


def velocity_rmse(pred: Tensor, target: Tensor, valid: Tensor, fps, scale: Tensor | None = None) -> Tensor:
    f = _as_batch(fps, pred).view(-1, 1, 1)
    dp = (pred[:, 1:] - pred[:, :-1]) * f
    dt = (target[:, 1:] - target[:, :-1]) * f
    ok = valid[:, 1:] & valid[:, :-1]
    return _rmse(dp - dt, ok, scale)


def second_difference(track: Tensor) -> Tensor:
    """[B, T, D] -> [B, T-2, D]: c_{k+1} - 2 c_k + c_{k-1} (per frame^2)."""
    return track[:, 2:] - 2 * track[:, 1:-1] + track[:, :-2]


def acceleration_rmse(pred: Tensor, target: Tensor, valid: Tensor, fps, scale: Tensor | None = None) -> Tensor:
    f2 = _as_batch(fps, pred).view(-1, 1, 1) ** 2
    ok = valid[:, 2:] & valid[:, 1:-1] & valid[:, :-2]
    return _rmse((second_difference(pred) - second_difference(target)) * f2, ok, scale)


def fit_acceleration(times: Tensor, pos: Tensor, weight: Tensor) -> Tensor:
    """Least-squares constant acceleration of each track (see module docstring)."""
    work = torch.float64 if pos.dtype != torch.float64 and pos.device.type != "mps" else pos.dtype
    t = times.to(work)
    x = pos.to(work)
    w = weight.to(work) * x.isfinite().all(-1).to(work)
    x = torch.nan_to_num(x)
    n = w.sum(-1, keepdim=True)
    # Centre and scale time for a well-conditioned 3x3 system (t in seconds spans ~0..2).
    t0 = (w * t).sum(-1, keepdim=True) / n.clamp_min(1e-12)
    s = ((w * (t - t0) ** 2).sum(-1, keepdim=True) / n.clamp_min(1e-12)).sqrt().clamp_min(1e-9)
    tau = (t - t0) / s
    basis = torch.stack([torch.ones_like(tau), tau, 0.5 * tau**2], -1)  # [B, N, 3]
    bw = basis * w.unsqueeze(-1)
    m = bw.transpose(1, 2) @ basis  # [B, 3, 3]
    rhs = bw.transpose(1, 2) @ x  # [B, 3, 2]
    coef = torch.linalg.pinv(m) @ rhs
    accel = coef[:, 2] / s**2  # d^2/dt^2 of 0.5 c2 tau^2 = c2 / s^2
    enough = ((w > 0).sum(-1) >= 3).unsqueeze(-1)
    accel = torch.where(enough, accel, torch.full_like(accel, float("nan")))
    return accel.to(pos.dtype)


def pixel_accel_to_world(accel_px: Tensor, depth_m, fx, fy) -> Tensor:
    """Image-plane (u right, v down) px/s^2 -> motion-plane (x right, z up) m/s^2."""
    z = _as_batch(depth_m, accel_px)
    return torch.stack([accel_px[:, 0] * z / _as_batch(fx, accel_px), -accel_px[:, 1] * z / _as_batch(fy, accel_px)], -1)


def accel_ratio(fit: Tensor, true: Tensor) -> Tensor:
    nt = true.square().sum(-1).sqrt()
    r = fit.square().sum(-1).sqrt() / nt
    return torch.where(nt > 0, r, torch.full_like(r, float("nan")))
