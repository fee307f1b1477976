"""The mask metrics' per-pixel loops on a CPU, compiled with numba: what `chamfer`, `iou`,
`consistency`, `mask_centroids` and `mask_boxes` run for CPU tensors (other devices run their torch ops; both agree with the NumPy
references). Masks come in as `_util.mask_bytes` makes them.

The scorer hands these kernels one clip's crop (32 frames of ~23,000 pixels on the bench, the
object ~700 of them): as torch ops every step of chamfer, iou and consistency is a pass over a
small tensor and a dispatch, and on a CPU the dispatches cost more than the arithmetic (measured on
the 80-clip bench, one thread: 5.9 ms a clip as torch ops, 1.8-2.0 ms with these loops, their
torch glue included). Each kernel finds each frame's object box with a vectorised scan and then
works inside it, sums in float64, and releases the GIL, so the scorer's worker threads run clips
in parallel.

Compiled for exactly the types the callers pass when this module is imported (numba's cache makes
that a load after the first time); the metric modules import it only on their CPU path (the
extractor, CPU-only, measures its windows with `moments`).
"""

from __future__ import annotations

import numba as nb
import numpy as np

_MASKS = "uint8[:, :, ::1]"  # [N, H, W], 0 or 1 (bool masks viewed as bytes: the OR scans vectorise)
_FRAMES = ("uint8[:, :, :, ::1]", "float32[:, :, :, ::1]", "float64[:, :, :, ::1]")  # [N, H, W, 3]


@nb.njit(inline="always")
def _box(m, k, h, w):
    """The box (y0, y1, x0, x1), half-open, of mask k's set pixels; y1 = 0 when it is empty. Rows
    are tested by OR over each row (vectorised), columns by scanning the box's rows from both ends
    up to the box found so far: objects are small in the crops the scorer hands over."""
    y0, y1 = h, 0
    for y in range(h):
        acc = np.uint8(0)
        for x in range(w):
            acc |= m[k, y, x]
        if acc:
            y0, y1 = min(y0, y), y + 1
    x0, x1 = w, 0
    for y in range(y0, y1):
        for x in range(x0):
            if m[k, y, x]:
                x0 = x
                break
        for x in range(w - 1, x1 - 1, -1):
            if m[k, y, x]:
                x1 = x + 1
                break
    return y0, y1, x0, x1


@nb.njit(inline="always")
def _interior_row(m, k, y, x0, x1, h, w, col, out):
    """out[x] for x in [x0, x1): whether pixel (y, x) of mask k and its in-image 8-neighbours are all
    set (the 3x3 erosion; outside the image counts as set, as in the torch kernels), separably: the
    3-row AND per column into col, then the 3-column AND. [x0, x1) holds the row's set pixels."""
    for x in range(max(x0 - 1, 0), min(x1 + 1, w)):
        up = m[k, y - 1, x] if y > 0 else 1
        down = m[k, y + 1, x] if y < h - 1 else 1
        col[x] = up & m[k, y, x] & down
    for x in range(x0, x1):
        left = col[x - 1] if x > 0 else 1
        right = col[x + 1] if x < w - 1 else 1
        out[x] = left & col[x] & right


@nb.njit(inline="always")
def _directed_sum(a, b, k, y0, y1, x0, x1, h, w, col, inner, oy, ox, ey, ex, row_start):
    """Sum over the pixels p of A \\ B of min over B of ||p - q||, in frame k's box [y0, y1) x
    [x0, x1) that holds both masks. For p outside B its nearest pixel of B lies on B's boundary (a
    set pixel with an unset 8-neighbour: an inner pixel has a neighbour closer to p), so only those
    are compared, row by row outwards from p's row until the row distance alone exceeds the best."""
    n_out, n_edge = 0, 0
    for y in range(y0, y1):
        row_start[y - y0] = n_edge
        _interior_row(b, k, y, x0, x1, h, w, col, inner)
        for x in range(x0, x1):
            if b[k, y, x]:
                if not inner[x]:
                    ey[n_edge], ex[n_edge] = y, x
                    n_edge += 1
            elif a[k, y, x]:
                oy[n_out], ox[n_out] = y, x
                n_out += 1
    row_start[y1 - y0] = n_edge
    total = 0.0
    for i in range(n_out):
        y, x = oy[i], ox[i]
        best = np.inf
        r = 0
        while r * r < best and (y - r >= y0 or y + r < y1):
            for row in (y - r, y + r):
                if y0 <= row < y1 and (r > 0 or row == y - r):
                    for j in range(row_start[row - y0], row_start[row - y0 + 1]):
                        dx = x - ex[j]
                        best = min(best, r * r + dx * dx)
                if r == 0:
                    break
            r += 1
        total += np.sqrt(best)
    return total


@nb.njit(f"float64[::1]({_MASKS}, {_MASKS})", nogil=True, cache=True)
def chamfer_frames(p, g):
    """PISA's symmetric chamfer distance of each frame's pair of masks (see `chamfer`): mean over P
    of the distance to G plus mean over G of the distance to P, in pixels; NaN where a mask is
    empty. p, g: [N, H, W], 0 or 1."""
    n, h, w = p.shape
    out = np.empty(n)
    oy, ox = np.empty(h * w, np.int64), np.empty(h * w, np.int64)
    ey, ex = np.empty(h * w, np.int64), np.empty(h * w, np.int64)
    row_start = np.empty(h + 1, np.int64)
    col, inner = np.empty(w, np.uint8), np.empty(w, np.uint8)
    for k in range(n):
        py0, py1, px0, px1 = _box(p, k, h, w)
        gy0, gy1, gx0, gx1 = _box(g, k, h, w)
        if py1 == 0 or gy1 == 0:
            out[k] = np.nan
            continue
        y0, y1, x0, x1 = min(py0, gy0), max(py1, gy1), min(px0, gx0), max(px1, gx1)
        n_p, n_g = 0, 0
        for y in range(y0, y1):
            for x in range(x0, x1):
                n_p += p[k, y, x]
                n_g += g[k, y, x]
        s_p = _directed_sum(p, g, k, y0, y1, x0, x1, h, w, col, inner, oy, ox, ey, ex, row_start)
        s_g = _directed_sum(g, p, k, y0, y1, x0, x1, h, w, col, inner, oy, ox, ey, ex, row_start)
        out[k] = s_p / n_p + s_g / n_g
    return out


@nb.njit(f"int64[:, ::1]({_MASKS})", nogil=True, cache=True)
def moments(m):
    """Per mask ([N, H, W], 0 or 1): (area, sum of x, sum of y, y0, y1, x0, x1) of its set pixels,
    the centroid's exact integer sums and the box (half-open), all zeros for an empty mask; for
    `mask_centroids` and `mask_boxes`. One row scan for the box, then sums inside it."""
    n, h, w = m.shape
    out = np.zeros((n, 7), np.int64)
    for k in range(n):
        y0, y1, x0, x1 = _box(m, k, h, w)
        if y1 == 0:
            continue
        area, sx, sy = 0, 0, 0
        for y in range(y0, y1):
            r, rx = 0, 0
            for x in range(x0, x1):
                v = np.int64(m[k, y, x])
                r += v
                rx += v * x
            area, sx, sy = area + r, sx + rx, sy + r * y
        out[k, 0], out[k, 1], out[k, 2] = area, sx, sy
        out[k, 3], out[k, 4], out[k, 5], out[k, 6] = y0, y1, x0, x1
    return out


def centroids(mom: np.ndarray, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) centroids [N, 2] in `dtype` and valid [N] (area > 0) from `moments` rows: the exact
    integer sums divided once in `dtype`; NaN where a mask is empty. The one division of the
    compiled path: `mask_centroids` on a CPU, the extractor's windows, the scorer's ground truth."""
    area = mom[:, 0]
    valid = area > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        c = mom[:, 1:3].astype(dtype) / area[:, None].astype(dtype)
    c[~valid] = np.nan
    return c, valid


@nb.njit(f"Tuple((int64[::1], int64[::1]))({_MASKS}, {_MASKS})", nogil=True, cache=True)
def overlap_counts(p, g):
    """|P ∩ G| and |P ∪ G| of each frame's pair of masks ([N, H, W], 0 or 1), for `iou`."""
    n = p.shape[0]
    inter, union = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for k in range(n):
        i, u = 0, 0
        for y in range(p.shape[1]):
            for x in range(p.shape[2]):
                i += p[k, y, x] & g[k, y, x]
                u += p[k, y, x] | g[k, y, x]
        inter[k], union[k] = i, u
    return inter, union


@nb.njit([f"Tuple((int64[::1], float64[:, ::1], float64[::1]))({f}, {_MASKS}, int64, float64)" for f in _FRAMES],
         nogil=True, cache=True)
def consistency_stats(frames, masks, t, unit):
    """Per-frame statistics of `consistency` for clips of t frames (frames [B * t, H, W, 3] with
    value / unit in [0, 1], masks [B * t, H, W], 0 or 1), in the torch kernel's definitions:

    - area [B * t]: the mask's pixel count;
    - chroma [B * t, 3]: the mean chromaticity value / sum(values) (sum clamped at 1e-3) over the
      eroded mask's pixels (set pixels whose in-image 8-neighbours are all set), over the whole
      mask's where the erosion leaves nothing; 0 for an empty mask;
    - bg [B * t]: for frames k >= 1 of each clip, the mean over the 4x-subsampled grid (rows and
      columns 2, 6, 10, ...) of the mean over channels of |I_k - I_0|, over the cells clear of both frames' objects:
      no object pixel in the 4x4 cell (rows and columns 4i..4i+3) or its 8 neighbours; 0 for
      frame 0 and where no cell is clear.
    """
    nf, h, w, c = frames.shape  # c = 3
    hc, wc = (h + 3) // 4, (w + 3) // 4
    hs, ws = (h + 1) // 4, (w + 1) // 4  # len(range(2, h, 4))
    area = np.zeros(nf, np.int64)
    chroma = np.zeros((nf, c))
    bg = np.zeros(nf)
    cells = np.zeros((hc, wc), np.uint8)  # the frame's 4x4 cells that hold an object pixel
    near = np.zeros((t, hc, wc), np.uint8)  # the clip's cells within one cell of an object pixel
    col, inner = np.empty(w, np.uint8), np.empty(w, np.uint8)
    inv = 1.0 / unit
    for f in range(nf):
        k = f % t
        y0, y1, x0, x1 = _box(masks, f, h, w)
        cells[:] = 0
        near[k] = 0
        n_core, n_all = 0, 0
        r_core = g_core = b_core = r_all = g_all = b_all = 0.0
        for y in range(y0, y1):
            _interior_row(masks, f, y, x0, x1, h, w, col, inner)
            for x in range(x0, x1):
                if not masks[f, y, x]:
                    continue
                cells[y >> 2, x >> 2] = 1
                r, g, b = frames[f, y, x, 0] * inv, frames[f, y, x, 1] * inv, frames[f, y, x, 2] * inv
                s = 1.0 / max(r + g + b, 1e-3)
                r, g, b = r * s, g * s, b * s
                n_all += 1
                r_all, g_all, b_all = r_all + r, g_all + g, b_all + b
                if inner[x]:
                    n_core += 1
                    r_core, g_core, b_core = r_core + r, g_core + g, b_core + b
        # the cells within one cell of an object pixel (a 3x3 dilation over the box's cells)
        if y1 > 0:
            for ci in range(y0 >> 2, ((y1 - 1) >> 2) + 1):
                for cj in range(x0 >> 2, ((x1 - 1) >> 2) + 1):
                    if cells[ci, cj]:
                        for di in range(max(ci - 1, 0), min(ci + 2, hc)):
                            for dj in range(max(cj - 1, 0), min(cj + 2, wc)):
                                near[k, di, dj] = 1
        # chromaticity on the core (anti-aliased edges blend object and background), else the mask
        area[f] = n_all
        if n_core:
            chroma[f, 0], chroma[f, 1], chroma[f, 2] = r_core / n_core, g_core / n_core, b_core / n_core
        elif n_all:
            chroma[f, 0], chroma[f, 1], chroma[f, 2] = r_all / n_all, g_all / n_all, b_all / n_all
        if k == 0:
            continue
        f0 = f - k  # the clip's first frame
        total, clear = 0.0, 0
        for i in range(hs):
            for j in range(ws):
                if near[k, i, j] or near[0, i, j]:
                    continue
                y, x = 2 + 4 * i, 2 + 4 * j
                total += (abs(frames[f, y, x, 0] * inv - frames[f0, y, x, 0] * inv)
                          + abs(frames[f, y, x, 1] * inv - frames[f0, y, x, 1] * inv)
                          + abs(frames[f, y, x, 2] * inv - frames[f0, y, x, 2] * inv)) / 3.0
                clear += 1
        bg[f] = total / max(clear, 1)
    return area, chroma, bg
