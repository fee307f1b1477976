"""The plate extractor's per-pixel loops, compiled with numba (CPU, one call per clip).

The extractor's work per clip is a few hundred thousand pixels, each a handful of operations: as a
chain of torch ops every step is a pass over memory and a dispatch, and on a CPU the steps cost
more than the arithmetic (measured on the 80-clip bench, one thread: the foreground test on the
lattice 2.6 ms a clip as torch ops, 0.8 ms as one loop). Each kernel here is one loop over
the pixels it reads, in the decoder's [N, H, W, 3] layout, and releases the GIL so the scorer's
worker threads run them in parallel.

Frames are uint8 (0..255) or float32 (0..1) [N, H, W, 3]; the caller folds the unit into the
per-frame scale, so both take the same arithmetic. The kernels are compiled for exactly these
types when this module is imported (numba's cache makes that a load after the first time, ~0.1 s),
so the cost is the import's, paid once per process, not the first clip's.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# the two frame types, C-contiguous [N, H, W, 3]
_FRAMES = ("uint8[:, :, :, ::1]", "float32[:, :, :, ::1]")
_BG = "float32[:, :, ::1]"
_PER_FRAME = "float32[:, ::1], float32[:, ::1], float32[::1]"  # scale, shift, thr2


def _signatures(template: str) -> list[str]:
    return [template.format(frames=f, bg=_BG, per_frame=_PER_FRAME) for f in _FRAMES]


@nb.njit(inline="always")
def _kth_smallest(a, k):
    """The k-th smallest value of `a` (0-based), reordering `a` in place: quickselect (median-of-3
    pivots, Hoare partition). np.partition's value, in half its time on the drift fit's 2,704
    distances (it copies the array and selects more slowly)."""
    lo, hi = 0, len(a) - 1
    while hi > lo:
        mid = (lo + hi) >> 1
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return a[k]
    return a[k]


@nb.njit(inline="always")
def _robust_cut(d2, scratch, sigma_floor):
    """The reweighting rule of the robust fits: sigma = 1.4826 x the median colour distance (the
    lower middle for even counts, as torch.median) of the squared distances d2, and the squared
    cut max(3 sigma, sigma_floor)^2 within which a pixel weighs in the next pass. `scratch`: as
    long as d2, overwritten."""
    scratch[:] = d2
    sigma = 1.4826 * np.sqrt(_kth_smallest(scratch, (len(d2) - 1) // 2))
    return sigma, max(3.0 * sigma, sigma_floor) ** 2


@nb.njit(_signatures("({frames}, {bg}, float64, int64, int64, float64)"), nogil=True, cache=True, fastmath=True)
def drift_fit(frames, bg, unit, stride, iters, sigma_floor):
    """Per-frame, per-channel gain/offset drift, frame = g bg + o, fitted on every `stride`-th row
    and column by iteratively reweighted least squares, and the robust noise level of the
    corrected frames (1.4826 x the median corrected colour distance to the plate).

    frames: [N, H, W, 3] (value / unit in [0, 1]); bg: float32 [H, W, 3] in [0, 1].
    Returns g, o float64 [N, 3] and sigma float64 [N]. Pass 1 weighs every sampled pixel; each
    later pass only those within max(3 sigma, sigma_floor) of the plate after the previous
    pass's correction (the object, and anything else that moved, drops out). A flat plate channel
    (variance <= 1e-4) cannot separate gain from offset: its gain stays 1. Moments in float64.
    """
    n, h, w = frames.shape[0], bg.shape[0], bg.shape[1]
    ny, nx = (h + stride - 1) // stride, (w + stride - 1) // stride
    p = ny * nx
    b = np.empty((3, p))  # planar: the loops over pixels run on contiguous rows
    f = np.empty((3, p))
    for i in range(ny):
        for j in range(nx):
            for c in range(3):
                b[c, i * nx + j] = bg[i * stride, j * stride, c]
    g = np.ones((n, 3))
    o = np.zeros((n, 3))
    sigma = np.zeros(n)
    wt = np.empty(p)
    d2 = np.empty(p)
    scratch = np.empty(p)
    inv_unit = 1.0 / unit
    for k in range(n):
        for i in range(ny):
            row = frames[k, i * stride]
            for j in range(nx):
                px = row[j * stride]
                q = i * nx + j
                f[0, q], f[1, q], f[2, q] = px[0] * inv_unit, px[1] * inv_unit, px[2] * inv_unit
        wt[:] = 1.0
        for _ in range(iters):
            sw = max(wt.sum(), 1.0)
            for c in range(3):
                sf = sb = sbb = sfb = 0.0
                for q in range(p):
                    w = wt[q]
                    fq, bq = f[c, q], b[c, q]
                    sf += w * fq
                    sb += w * bq
                    sbb += w * bq * bq
                    sfb += w * fq * bq
                mf, mb = sf / sw, sb / sw
                var = sbb / sw - mb * mb
                cov = sfb / sw - mb * mf
                gc = cov / max(var, 1e-4) if var > 1e-4 else 1.0
                gc = min(max(gc, 0.5), 2.0)
                g[k, c] = gc
                o[k, c] = mf - gc * mb
            # the corrected colour distances, the three channels in one pass (one write of d2)
            i0, i1, i2 = 1.0 / g[k, 0], 1.0 / g[k, 1], 1.0 / g[k, 2]
            o0, o1, o2 = o[k, 0], o[k, 1], o[k, 2]
            for q in range(p):
                d = (f[0, q] - o0) * i0 - b[0, q]
                e = d * d
                d = (f[1, q] - o1) * i1 - b[1, q]
                e += d * d
                d = (f[2, q] - o2) * i2 - b[2, q]
                d2[q] = e + d * d
            sigma[k], cut = _robust_cut(d2, scratch, sigma_floor)
            for q in range(p):
                wt[q] = 1.0 if d2[q] <= cut else 0.0
    return g, o, sigma


@nb.njit(inline="always")
def _solve4(a, r):
    """x [4, k] with a x = r, a [4, 4] (Gaussian elimination with partial pivoting, on copies;
    a singular direction gets 0)."""
    a, x = a.copy(), r.copy()
    for i in range(4):
        p = i
        for j in range(i + 1, 4):
            if abs(a[j, i]) > abs(a[p, i]):
                p = j
        if p != i:
            for j in range(4):
                a[i, j], a[p, j] = a[p, j], a[i, j]
            for c in range(x.shape[1]):
                x[i, c], x[p, c] = x[p, c], x[i, c]
        if abs(a[i, i]) < 1e-12:
            continue
        for j in range(i + 1, 4):
            fac = a[j, i] / a[i, i]
            for k in range(i, 4):
                a[j, k] -= fac * a[i, k]
            for c in range(x.shape[1]):
                x[j, c] -= fac * x[i, c]
    for i in range(3, -1, -1):
        for c in range(x.shape[1]):
            acc = x[i, c]
            for k in range(i + 1, 4):
                acc -= a[i, k] * x[k, c]
            x[i, c] = acc / a[i, i] if abs(a[i, i]) >= 1e-12 else 0.0
    return x


@nb.njit("float64[:, ::1](float64[:, ::1], float64[:, ::1], int64, float64)", nogil=True, cache=True)
def colour_fit(f, b, iters, sigma_floor):
    """The robust affine colour map f ~ [b, 1] @ beta (f, b [M, 3]: a frame's and the plate's colours
    at the same pixels, in [0, 1]; beta [4, 3]), every output channel from all three plate
    channels. Iteratively reweighted as `drift_fit`: each pass after the first weighs only the
    pixels within max(3 sigma, sigma_floor) of the last fit, sigma 1.4826 x the median colour
    distance."""
    m = f.shape[0]
    keep = np.ones(m, np.bool_)
    d2 = np.empty(m)
    scratch = np.empty(m)
    gram = np.empty((4, 4))
    rhs = np.empty((4, 3))
    beta = np.zeros((4, 3))
    for _ in range(iters):
        gram[:] = 0.0
        rhs[:] = 0.0
        for q in range(m):
            if keep[q]:
                x = (b[q, 0], b[q, 1], b[q, 2], 1.0)
                for i in range(4):
                    for j in range(4):
                        gram[i, j] += x[i] * x[j]
                    for c in range(3):
                        rhs[i, c] += x[i] * f[q, c]
        beta = _solve4(gram, rhs)
        for q in range(m):
            e = 0.0
            for c in range(3):
                r = f[q, c] - (b[q, 0] * beta[0, c] + b[q, 1] * beta[1, c] + b[q, 2] * beta[2, c] + beta[3, c])
                e += r * r
            d2[q] = e
        cut = _robust_cut(d2, scratch, sigma_floor)[1]
        for q in range(m):
            keep[q] = d2[q] <= cut
    return beta


@nb.njit([f"({f}, boolean[:, ::1], float64, float64, int64)" for f in _FRAMES],
         nogil=True, cache=True)
def self_background(frames, region, unit, stable, min_run):
    """The `self` extractor's background from the video itself (the rule: `extract._self_background`).

    frames: [N, H, W, 3] (value / unit in [0, 1]); region: bool [H, W], the object's grown
    first-frame mask. Per pixel, the frames split into runs wherever the colour, each frame's mean
    colour removed, moves by more than `stable` from one frame to the next; a run counts when it
    has at least `min_run` frames, or, outside the region, when it opens the clip. The pixel's
    background is the mean of the last counting run inside the region, of the first elsewhere,
    or, where no run counts, the lower temporal median.

    Returns bg float32 [H, W, 3] in [0, 1], opening bool [H, W] (the chosen run opens the clip)
    and none bool [H, W] (no run counted: the median). One pass per image row over that row of
    every frame (they fit in the cache), each pixel's runs followed as the frames go by: a run's
    sum is kept when the run ends and counts.
    """
    n, h, w = frames.shape[0], frames.shape[1], frames.shape[2]
    inv = 1.0 / unit
    mean = np.zeros((n, 3))
    for k in range(n):
        s0 = s1 = s2 = 0.0
        for y in range(h):
            row = frames[k, y]
            for x in range(w):
                s0 += row[x, 0]
                s1 += row[x, 1]
                s2 += row[x, 2]
        mean[k, 0], mean[k, 1], mean[k, 2] = s0 * inv / (h * w), s1 * inv / (h * w), s2 * inv / (h * w)
    # the change of frame k's mean colour from frame k - 1's, in the frames' own unit, repeated
    # along a row (float32: as exact as the differences of uint8 values)
    step = np.zeros((n, w * 3), np.float32)
    for k in range(1, n):
        for x in range(w):
            for c in range(3):
                step[k, 3 * x + c] = (mean[k, c] - mean[k - 1, c]) * unit
    sq = np.empty(w * 3, np.float32)
    stable2 = np.float32(stable * stable * unit * unit)
    bg = np.empty((h, w, 3), np.float32)
    opening = np.zeros((h, w), np.bool_)
    none = np.zeros((h, w), np.bool_)
    run = np.zeros(w * 3)  # per pixel of the row, channels interleaved: the sum of its current run,
    best = np.zeros((w, 3))  # of the chosen run so far,
    start = np.zeros(w, np.int64)  # where the current run starts,
    first = np.empty(w, np.int64)  # and where the chosen one starts and ends (-1: none yet)
    last = np.empty(w, np.int64)
    ends = np.empty(w, np.bool_)
    vals = np.empty(n)
    for y in range(h):
        run[:] = 0.0
        start[:] = 0
        first[:] = -1
        for k in range(1, n + 1):
            # whether a run ends before frame k: frame k's colour left frame k - 1's (the last
            # frame ends every run)
            if k < n:
                row, prev, dm = frames[k, y].reshape(w * 3), frames[k - 1, y].reshape(w * 3), step[k]
                for i in range(w * 3):  # one flat loop over the channels (it vectorises)
                    d = np.float32(row[i]) - np.float32(prev[i]) - dm[i]
                    sq[i] = d * d
                n_ends = 0
                for x in range(w):
                    e = sq[3 * x] + sq[3 * x + 1] + sq[3 * x + 2] > stable2
                    ends[x] = e
                    n_ends += e
            else:
                ends[:] = True
                n_ends = w
            # frame k - 1 joins its run; where the run [start, k - 1] ends, it is kept if it counts
            # and is the one the rule picks (the last counting run inside the region, the first
            # elsewhere)
            prow = frames[k - 1, y].reshape(w * 3)
            for i in range(w * 3):
                run[i] += prow[i]
            for x in range(w if n_ends else 0):  # most rows of most frames: no run ends
                if not ends[x]:
                    continue
                s0, inside = start[x], region[y, x]
                if (k - s0 >= min_run or (s0 == 0 and not inside)) and (inside or first[x] < 0):
                    first[x], last[x] = s0, k - 1
                    best[x, 0], best[x, 1], best[x, 2] = run[3 * x], run[3 * x + 1], run[3 * x + 2]
                start[x] = k
                run[3 * x] = run[3 * x + 1] = run[3 * x + 2] = 0.0
        for x in range(w):
            if first[x] < 0:
                none[y, x] = True
                for c in range(3):
                    for k in range(n):
                        vals[k] = frames[k, y, x, c]
                    bg[y, x, c] = _kth_smallest(vals, (n - 1) // 2) * inv
            else:
                opening[y, x] = first[x] == 0
                scale = inv / (last[x] - first[x] + 1)
                for c in range(3):
                    bg[y, x, c] = best[x, c] * scale
    return bg, opening, none


@nb.njit(inline="always")
def _affine(scale, shift, k):
    """Frame k's drift correction, c = value * s + h per channel: (s, h), two float32 3-tuples, taken
    once per frame (out of the pixel loops: ~15% faster on the lattice than indexing per pixel)."""
    return (scale[k, 0], scale[k, 1], scale[k, 2]), (shift[k, 0], shift[k, 1], shift[k, 2])


@nb.njit(inline="always")
def _corrected(row, brow, x, s, h):
    """Pixel x of a frame's row drift-corrected with (s, h) from `_affine` (float32, in the plate's
    units), and its squared colour distance to the plate's row: (c0, c1, c2, distance²)."""
    c0 = np.float32(row[x, 0]) * s[0] + h[0]
    c1 = np.float32(row[x, 1]) * s[1] + h[1]
    c2 = np.float32(row[x, 2]) * s[2] + h[2]
    d0, d1, d2 = c0 - brow[x, 0], c1 - brow[x, 1], c2 - brow[x, 2]
    return c0, c1, c2, d0 * d0 + d1 * d1 + d2 * d2


@nb.njit(_signatures("({frames}, {bg}, {per_frame}, float32[:, ::1], float32, int64[:, ::1], int64[:, ::1])"),
         nogil=True, cache=True)
def foreground(frames, bg, scale, shift, thr2, pal, strong2, rows, cols):
    """The plate extractor's foreground test on one tile of pixels per frame: frame k's at rows
    rows[k] and columns cols[k]; returns bool [N, len(rows[k]), len(cols[k])].

    A pixel is foreground when its drift-corrected colour c = frame * scale + shift (per frame and
    channel) is farther than sqrt(thr2) from the plate, and, with a palette (pal [K, 3], K > 0),
    when it is either farther than sqrt(strong2) from the plate or closer to one of the object's
    palette colours than to the plate (the test stops at the first such colour).
    """
    n, a = rows.shape
    bw = cols.shape[1]
    k_pal = pal.shape[0]
    out = np.empty((n, a, bw), np.bool_)
    for k in range(n):
        th = thr2[k]
        sk, hk = _affine(scale, shift, k)
        for i in range(a):
            y = rows[k, i]
            row, brow, orow = frames[k, y], bg[y], out[k, i]
            for j in range(bw):
                c0, c1, c2, dist = _corrected(row, brow, cols[k, j], sk, hk)
                fg = dist > th
                if fg and k_pal > 0 and dist <= strong2:
                    fg = False
                    for q in range(k_pal):
                        e0, e1, e2 = c0 - pal[q, 0], c1 - pal[q, 1], c2 - pal[q, 2]
                        if e0 * e0 + e1 * e1 + e2 * e2 < dist:
                            fg = True
                            break
                orow[j] = fg
    return out


@nb.njit(_signatures("({frames}, {bg}, {per_frame}, boolean[:, :, ::1], int64[::1], int64[::1])"),
         nogil=True, cache=True)
def confirm_hits(frames, bg, scale, shift, thr2, hits, ly, lx):
    """Drop the lattice hits that cannot belong to a 3x3 block of foreground pixels, in place, and
    return each frame's box of the remaining hits, int64 [N, 4] (y0, y1, x0, x1) in lattice rows
    and columns, half-open, zeros where none is left.

    hits: bool [N, len(ly), len(lx)], the foreground test at rows ly and columns lx. A hit within
    one lattice step (8-neighbourhood) of an inner hit, one whose four lattice neighbours are all
    hits, lies in a large blob and is kept unchecked; any other hit is kept when its 5x5
    neighbourhood at full resolution (edge-replicated; the colour-distance test alone, without the
    palette) holds a 3x3 block of foreground pixels around one of its 9 central pixels.
    """
    n, a, b = hits.shape
    h, w = bg.shape[0], bg.shape[1]
    boxes = np.zeros((n, 4), np.int64)
    inner = np.zeros((a, b), np.bool_)
    patch = np.zeros((5, 5), np.bool_)
    for k in range(n):
        sk, hk = _affine(scale, shift, k)
        for i in range(a):
            for j in range(b):
                inner[i, j] = (hits[k, i, j] and i > 0 and i < a - 1 and j > 0 and j < b - 1
                               and hits[k, i - 1, j] and hits[k, i + 1, j] and hits[k, i, j - 1] and hits[k, i, j + 1])
        y0, y1, x0, x1 = a, 0, b, 0
        for i in range(a):
            for j in range(b):
                if not hits[k, i, j]:
                    continue
                near_inner = False
                for di in range(max(i - 1, 0), min(i + 2, a)):
                    for dj in range(max(j - 1, 0), min(j + 2, b)):
                        near_inner |= inner[di, dj]
                if not near_inner:
                    for pi in range(5):
                        y = min(max(ly[i] + pi - 2, 0), h - 1)
                        for pj in range(5):
                            x = min(max(lx[j] + pj - 2, 0), w - 1)
                            patch[pi, pj] = _corrected(frames[k, y], bg[y], x, sk, hk)[3] > thr2[k]
                    block = False
                    for ci in range(1, 4):
                        for cj in range(1, 4):
                            full = True
                            for di in range(ci - 1, ci + 2):
                                for dj in range(cj - 1, cj + 2):
                                    full &= patch[di, dj]
                            block |= full
                    if not block:
                        hits[k, i, j] = False
                        continue
                y0, y1, x0, x1 = min(y0, i), max(y1, i + 1), min(x0, j), max(x1, j + 1)
        if y1 > 0:
            boxes[k, 0], boxes[k, 1], boxes[k, 2], boxes[k, 3] = y0, y1, x0, x1
    return boxes


@nb.njit(inline="always")
def _morph_pass(src, dst, r, dilation, dy, dx):
    """One separable pass: dst[y, x] = OR (dilation; outside the image unset) or AND (erosion;
    outside set) of src over the 2r + 1 pixels through (y, x) along the step (dy, dx)."""
    a, b = src.shape
    fill = np.uint8(0 if dilation else 1)
    for y in range(a):
        for x in range(b):
            acc = fill
            for d in range(-r, r + 1):
                yy, xx = y + d * dy, x + d * dx
                v = src[yy, xx] if 0 <= yy < a and 0 <= xx < b else fill
                acc = (acc | v) if dilation else (acc & v)
            dst[y, x] = acc


@nb.njit(inline="always")
def _morph(src, dst, tmp, r, dilation):
    """dst = the (2r+1) x (2r+1) square dilation or erosion of the 2-D 0/1 array src, as the torch
    kernels define them (down the columns into tmp, then along the rows)."""
    _morph_pass(src, tmp, r, dilation, 1, 0)
    _morph_pass(tmp, dst, r, dilation, 0, 1)


@nb.njit("boolean[::1](uint8[:, :, ::1])", nogil=True, cache=True)
def open_close(win):
    """In place, per frame of the windows [N, a, b] (0/1): keep only the pixels within 2 px of the
    3x3-eroded core, opened = dilate5(erode3(m)) & m, then fill 1-px holes and notches,
    erode3(dilate3(opened)) | opened (see `extract._plate_masks`). Returns, per frame, whether the
    opening removed a pixel (it may have cut the mask in two)."""
    n, a, b = win.shape
    t1, t2, tmp = np.empty((a, b), np.uint8), np.empty((a, b), np.uint8), np.empty((a, b), np.uint8)
    opened = np.zeros(n, np.bool_)
    for k in range(n):
        m = win[k]
        _morph(m, t1, tmp, 1, False)
        _morph(t1, t2, tmp, 2, True)
        for y in range(a):
            for x in range(b):
                if m[y, x] and not t2[y, x]:
                    m[y, x] = 0
                    opened[k] = True
        _morph(m, t1, tmp, 1, True)
        _morph(t1, t2, tmp, 1, False)
        for y in range(a):
            for x in range(b):
                m[y, x] |= t2[y, x]
    return opened


@nb.njit(inline="always")
def _root(parent, i):
    """The root of i's tree, halving the path on the way (union-find)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@nb.njit("void(uint8[:, :, ::1])", nogil=True, cache=True)
def object_components(win):
    """In place, per frame of the candidate windows [N, a, b] (0/1): keep the candidates of one
    component, the 8-connected component of the 3x3-dilated candidates (fragments within 2 px join;
    outside the window unset) with the most candidates that survive a 3x3 erosion (outside the
    window set, as the torch erosion), ties to the larger component, then to the one whose first
    pixel comes first in raster order. A frame without candidates stays empty.

    Union-find over the dilated pixels in raster order: a pixel links to its labelled neighbours
    (left, and the three above; with the one above set, the others are already joined to it), every
    root is its component's first pixel and every parent an earlier pixel, so one pass in raster
    order then points each pixel at its root.
    """
    n, a, b = win.shape
    grown = np.empty((a, b), np.uint8)
    tmp = np.empty((a, b), np.uint8)
    core = np.empty((a, b), np.uint8)
    parent = np.empty(a * b, np.int64)
    weight = np.zeros(a * b, np.int64)
    area = np.zeros(a * b, np.int64)
    for k in range(n):
        m = win[k]
        _morph(m, grown, tmp, 1, True)
        _morph(m, core, tmp, 1, False)
        for y in range(a):
            for x in range(b):
                if not grown[y, x]:
                    continue
                i = y * b + x
                up = y > 0 and grown[y - 1, x]
                left = x > 0 and grown[y, x - 1]
                up_left = y > 0 and x > 0 and grown[y - 1, x - 1]
                up_right = y > 0 and x < b - 1 and grown[y - 1, x + 1]
                if up:  # left, up-left and up-right, where set, are joined to it already
                    parent[i] = _root(parent, i - b)
                elif left or up_left:
                    parent[i] = _root(parent, i - 1 if left else i - b - 1)
                    if up_right:  # joins two components that may still be apart
                        r1, r2 = parent[i], _root(parent, i - b + 1)
                        if r1 != r2:  # the earlier pixel stays the root
                            parent[max(r1, r2)] = min(r1, r2)
                            parent[i] = min(r1, r2)
                elif up_right:
                    parent[i] = _root(parent, i - b + 1)
                else:
                    parent[i] = i
                weight[i] = 0
                area[i] = 0
        # every parent precedes its pixel: in raster order, one step reaches the root
        for y in range(a):
            for x in range(b):
                if grown[y, x]:
                    i = y * b + x
                    r = parent[parent[i]]
                    parent[i] = r
                    area[r] += 1
                    weight[r] += core[y, x]
        best = -1
        for y in range(a):
            for x in range(b):
                i = y * b + x
                if grown[y, x] and parent[i] == i and (
                        best < 0 or weight[i] > weight[best] or (weight[i] == weight[best] and area[i] > area[best])):
                    best = i
        for y in range(a):
            for x in range(b):
                if m[y, x] and parent[y * b + x] != best:
                    m[y, x] = 0


@nb.njit("boolean[:, ::1](boolean[:, :, ::1], int64)", nogil=True, cache=True)
def core_near_edges(cand, r):
    """Per frame of the windows cand [N, a, b], whether the 3x3-eroded candidates (outside the
    window counts as set, as the torch erosion) have a pixel within r px of the window's top,
    bottom, left and right edge: bool [N, 4]. Only the r-px bands are read."""
    n, a, b = cand.shape
    out = np.zeros((n, 4), np.bool_)
    for k in range(n):
        for y in range(a):
            band_y = y < r or y >= a - r
            for x in range(b):
                if not (band_y or x < r or x >= b - r) or not cand[k, y, x]:
                    continue
                core = True
                for yy in range(max(y - 1, 0), min(y + 2, a)):
                    for xx in range(max(x - 1, 0), min(x + 2, b)):
                        core &= cand[k, yy, xx]
                if core:
                    out[k, 0] |= y < r
                    out[k, 1] |= y >= a - r
                    out[k, 2] |= x < r
                    out[k, 3] |= x >= b - r
    return out
