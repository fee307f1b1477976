"""Put a generated video's timeline onto the benchmark's frame times.

A generated video has its own fps and length. Everything is compared on the benchmark's grid
t_k = k / fps (seconds from the first frame): positions by linear interpolation between the two
generated frames around t_k (exact when the rates agree), masks and pixels from the generated frame
nearest in time. A benchmark time outside the generated video's span is absent, not extrapolated.
"""

from __future__ import annotations

import torch
from torch import Tensor


def coverage(native_times: Tensor, bench_times: Tensor, bench_fps: float) -> Tensor:
    """bool [T]: benchmark times the generated video covers (within half a benchmark frame)."""
    tol = 0.5 / bench_fps
    return (bench_times >= native_times[0] - tol) & (bench_times <= native_times[-1] + tol)


def nearest_frames(native_times: Tensor, bench_times: Tensor) -> Tensor:
    """long [T]: index of the generated frame nearest to each benchmark time (earlier on ties)."""
    idx = torch.searchsorted(native_times.contiguous(), bench_times.contiguous()).clamp(1, len(native_times) - 1)
    left, right = native_times[idx - 1], native_times[idx]
    take_left = (bench_times - left) <= (right - bench_times)
    out = torch.where(take_left, idx - 1, idx)
    return out if len(native_times) > 1 else torch.zeros_like(out)


def interpolate_track(native_times: Tensor, values: Tensor, valid: Tensor, bench_times: Tensor,
                      bench_fps: float) -> tuple[Tensor, Tensor]:
    """Linear interpolation of [N, D] samples at the benchmark times -> ([T, D], ok [T]).

    Both neighbours must be valid; a benchmark time within 1e-3 frame of a generated frame takes
    that frame alone; times beyond either end (but covered, see `coverage`) take the end frame.
    """
    n = len(native_times)
    eps = 1e-3 / bench_fps
    t = bench_times.to(native_times.dtype).clamp(native_times[0], native_times[-1])
    if n == 1:
        ok = valid[:1].expand(len(t)) & coverage(native_times, bench_times, bench_fps)
        return values[:1].expand(len(t), -1).clone(), ok
    hi = torch.searchsorted(native_times.contiguous(), t.contiguous()).clamp(1, n - 1)
    lo = hi - 1
    t0, t1 = native_times[lo], native_times[hi]
    w = ((t - t0) / (t1 - t0)).clamp(0, 1)
    snap_lo = (t - t0).abs() <= eps
    snap_hi = (t1 - t).abs() <= eps
    w = torch.where(snap_lo, torch.zeros_like(w), torch.where(snap_hi, torch.ones_like(w), w))
    v = torch.nan_to_num(values)  # lost frames' NaN would leak through a zero weight (NaN * 0 = NaN)
    out = v[lo] * (1 - w).unsqueeze(-1).to(v.dtype) + v[hi] * w.unsqueeze(-1).to(v.dtype)
    ok = torch.where(snap_lo, valid[lo], torch.where(snap_hi, valid[hi], valid[lo] & valid[hi]))
    ok = ok & coverage(native_times, bench_times, bench_fps)
    out = torch.where(ok.unsqueeze(-1), out, torch.full_like(out, float("nan")))
    return out, ok
