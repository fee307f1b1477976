"""Put a generated video's timeline onto the benchmark's frame times.

A generated video has its own fps and length. Everything is compared on the benchmark's grid
t_k = k / fps (seconds from the first frame): positions by linear interpolation between the two
generated frames around t_k (exact when the rates agree), masks and pixels from the generated frame
nearest in time. A benchmark time outside the generated video's span is absent, not extrapolated.

NumPy, per clip: a clip's timeline is a few dozen float64 times, and the scorer's bookkeeping on
them costs a microsecond an operation here against several as tensor ops (the metric kernels then
take the results batched, as tensors, on any device).
"""

from __future__ import annotations

import numpy as np


def coverage(native_times: np.ndarray, bench_times: np.ndarray, bench_fps: float) -> np.ndarray:
    """bool [T]: benchmark times the generated video covers (within half a benchmark frame)."""
    tol = 0.5 / bench_fps
    return (bench_times >= native_times[0] - tol) & (bench_times <= native_times[-1] + tol)


def nearest_frames(native_times: np.ndarray, bench_times: np.ndarray) -> np.ndarray:
    """int64 [T]: index of the generated frame nearest to each benchmark time (earlier on ties)."""
    if len(native_times) == 1:
        return np.zeros(len(bench_times), np.int64)
    idx = np.searchsorted(native_times, bench_times).clip(1, len(native_times) - 1)
    take_left = (bench_times - native_times[idx - 1]) <= (native_times[idx] - bench_times)
    return np.where(take_left, idx - 1, idx).astype(np.int64)


def interpolate_track(native_times: np.ndarray, values: np.ndarray, valid: np.ndarray, bench_times: np.ndarray,
                      bench_fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of [N, D] samples at the benchmark times -> ([T, D] float64, ok [T]).

    Both neighbours must be valid; a benchmark time within 1e-3 frame of a generated frame takes
    that frame alone; times beyond either end (but covered, see `coverage`) take the end frame.
    """
    n = len(native_times)
    values = np.asarray(values, np.float64)
    covered = coverage(native_times, bench_times, bench_fps)
    if n == 1:
        ok = valid[0] & covered
        return np.where(ok[:, None], values[:1], np.nan), ok
    eps = 1e-3 / bench_fps
    t = np.clip(bench_times, native_times[0], native_times[-1])
    hi = np.searchsorted(native_times, t).clip(1, n - 1)
    lo = hi - 1
    t0, t1 = native_times[lo], native_times[hi]
    w = ((t - t0) / (t1 - t0)).clip(0, 1)
    snap_lo = np.abs(t - t0) <= eps
    snap_hi = np.abs(t1 - t) <= eps
    w = np.where(snap_lo, 0.0, np.where(snap_hi, 1.0, w))
    v = np.nan_to_num(values)  # lost frames' NaN would leak through a zero weight (NaN * 0 = NaN)
    out = v[lo] * (1 - w)[:, None] + v[hi] * w[:, None]
    ok = np.where(snap_lo, valid[lo], np.where(snap_hi, valid[hi], valid[lo] & valid[hi])) & covered
    return np.where(ok[:, None], out, np.nan), ok
