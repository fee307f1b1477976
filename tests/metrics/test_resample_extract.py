"""Temporal resampling onto the benchmark's grid, pixel scaling, and the extractor's guarantees."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from newtonbench.errors import InvalidValueError, MissingDependencyError
from newtonbench.metrics.extract import ExtractConfig, bench_grid_frames, extract
from newtonbench.metrics.resample import coverage, interpolate_track, nearest_frames


def _chw(a: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] as extract takes images: float [3, H, W] in [0, 1]."""
    return torch.as_tensor(a).permute(2, 0, 1).float() / 255


def test_interpolation_exact_on_grid_and_linear_between():
    native = np.arange(0, 10) / 24  # 24 fps
    vals = np.stack([native * 100, native**2], -1)
    ok = np.ones(10, bool)
    bench = np.arange(0, 8) / 16  # 16 fps, last at 0.4375 > 9/24
    out, good = interpolate_track(native, vals, ok, bench, 16.0)
    assert good.tolist() == [True] * 7 + [False]  # 0.4375 s is beyond the video's 0.375 s + half a frame
    np.testing.assert_allclose(out[:7, 0], bench[:7] * 100, atol=1e-9)  # linear: exact
    # between two frames: the weights by time (0.0625 s lies 1/2 of the way from 1/24 to 2/24)
    np.testing.assert_allclose(out[1, 1], 0.5 * (1 / 24) ** 2 + 0.5 * (2 / 24) ** 2, rtol=1e-12)
    assert np.isnan(out[7]).all()
    ok[3] = False  # a lost frame poisons the two intervals around it, never with NaN leaking elsewhere
    vals[3] = np.nan
    out, good = interpolate_track(native, vals, ok, bench, 16.0)
    assert not good[2] and good[0] and good[3] and np.isfinite(out[good]).all() and np.isnan(out[2]).all()


def test_nearest_and_coverage():
    native = np.array([0.0, 0.1, 0.2, 0.3])
    bench = np.array([0.0, 0.05, 0.12, 0.29, 0.4])
    assert nearest_frames(native, bench).tolist() == [0, 0, 1, 3, 3]
    assert coverage(native, bench, 10.0).tolist() == [True, True, True, True, False]
    assert nearest_frames(native[:1], bench).tolist() == [0] * 5


@pytest.mark.parametrize("size", [(64, 64), (300, 220)])  # shrinking, and enlarging one axis more
def test_pixel_scaling_keeps_positions(size):
    f = np.zeros((2, 100, 200, 3), np.uint8)
    f[:, 40:60, 90:110] = 255  # a square centred at (99.5, 49.5) in a 200x100 frame
    x = bench_grid_frames(f, size)
    assert x.dtype == torch.uint8 and tuple(x.shape) == (2, 3, *size)
    # the intensity-weighted centre: u' = (u + 0.5) W / w - 0.5, v' = (v + 0.5) H / h - 0.5
    h, w = size
    weight = x[0, 0].double()
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    assert ((weight * xs).sum() / weight.sum()).item() == pytest.approx(100 * w / 200 - 0.5, abs=0.05)
    assert ((weight * ys).sum() / weight.sum()).item() == pytest.approx(50 * h / 100 - 0.5, abs=0.05)
    # uint8 frames are scaled in uint8 by the filter that scales float images, to within rounding
    ref = torch.nn.functional.interpolate(torch.from_numpy(f).permute(0, 3, 1, 2).double(), size=size,
                                          mode="bilinear", align_corners=False, antialias=True)
    assert (x.double() - ref).abs().max().item() <= 1.0
    as_float = bench_grid_frames(f.astype(np.float32) / 255, size)
    assert as_float.dtype == torch.float32 and (as_float.double() * 255 - ref).abs().max().item() < 0.01
    # at the benchmark's size: a view of the decoder's array, no copy
    assert bench_grid_frames(f, (100, 200)).data_ptr() == torch.from_numpy(f).data_ptr()


def _scene(drift=0.0, t=6):
    # Each pixel is covered by the object in at most 2 of the frames: the temporal median is the plate.
    rng = np.random.default_rng(0)
    bg = torch.tensor(rng.random((3, 64, 64)) * 0.3 + 0.35, dtype=torch.float32)
    frames = bg.repeat(t, 1, 1, 1)
    masks = torch.zeros(t, 64, 64, dtype=torch.bool)
    for i in range(t):
        masks[i, 2 + 5 * i:10 + 5 * i, 12 + i:20 + i] = True
    frames = torch.where(masks[:, None], torch.tensor([0.9, 0.2, 0.1])[None, :, None, None], frames)
    gains = 1 + drift * torch.linspace(0, 1, t)[:, None, None, None]
    return (frames * gains + drift / 2).clamp(0, 1), masks, bg


@pytest.mark.parametrize("mode", ["plate", "self"])
def test_extraction_exact_under_lighting_drift(mode):
    frames, masks, bg = _scene(drift=0.12, t=10)
    ex = extract(frames, masks[0], frames[0], bg, ExtractConfig(mode=mode))
    assert ex.valid.all()
    assert (ex.masks == masks).all()


def test_lost_object_is_reported_not_guessed():
    frames, masks, bg = _scene()
    frames[3:] = bg  # the object vanishes
    ex = extract(frames, masks[0], frames[0], bg)
    assert ex.valid.tolist() == [True, True, True, False, False, False]
    assert torch.isnan(ex.centroids[3:]).all()


def test_extractor_config_errors(tmp_path):
    with pytest.raises(InvalidValueError, match="extractor 'sift'"):
        ExtractConfig(mode="sift")
    with pytest.raises(InvalidValueError, match="sam2-checkpoint"):
        ExtractConfig(mode="sam2")
    for bad in ({"smooth_above": 0.0}, {"smooth_px": 0.0}, {"smooth_px": 20.0}, {"soft_ratio": 1.5},
                {"colour_map_above": -1.0}):
        with pytest.raises(InvalidValueError, match=next(iter(bad))):
            ExtractConfig(**bad)
    ckpt = tmp_path / "sam2.pt"
    ckpt.write_bytes(b"x")
    frames, masks, bg = _scene()
    try:
        import sam2  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match=r"newtonbench\[sam2\]"):
            extract(frames, masks[0], frames[0], bg, ExtractConfig(mode="sam2", sam2_checkpoint=str(ckpt)))


def _box_on_plate(seed, t, h, w, box):
    """A random uint8 plate [h, w, 3] and t frames of it with a red box at box(i) = (y0, y1, x0,
    x1) in frame i: (plate, frames, truth masks)."""
    rng = np.random.default_rng(seed)
    plate = (rng.random((h, w, 3)) * 60 + 90).astype(np.uint8)
    frames = np.repeat(plate[None], t, 0)
    truth = np.zeros((t, h, w), bool)
    for i in range(t):
        y0, y1, x0, x1 = box(i)
        truth[i, y0:y1, x0:x1] = True
    frames[truth] = (230, 40, 30)
    return plate, frames, truth


def test_windowed_extraction_equals_full_frame(monkeypatch):
    """The extractor searches a 3-px lattice, then full resolution in a window per frame: the masks
    must be those of the full-frame search, with a 1-px line across the frame (a smeared scene edge,
    on a lattice row and touching the object) and a second, smaller blob present."""
    from newtonbench.metrics import extract as E

    t, h, w = 8, 96, 128
    plate, frames, truth = _box_on_plate(1, t, h, w, lambda i: (10 + 9 * i, 21 + 9 * i, 5 + 13 * i, 18 + 13 * i))
    frames[4:, 66, :] = (225, 50, 40)  # a 1-px line through the object's row span from frame 4 on
    frames[:, 86:90, 2:6] = (228, 45, 35)  # a 4x4 blob: fewer eroded pixels than the object
    u8 = E.bench_grid_frames(frames, (h, w))
    assert u8.dtype == torch.uint8
    first, bg = _chw(frames[0]), _chw(plate)
    windowed = extract(u8, torch.as_tensor(truth[0]), first, bg)
    from_float = extract(u8.float() / 255, torch.as_tensor(truth[0]), first, bg)
    monkeypatch.setattr(E, "_ROI_MIN_AREA", 10**9)  # every frame searched whole
    full = extract(u8, torch.as_tensor(truth[0]), first, bg)
    assert torch.equal(windowed.masks, full.masks) and torch.equal(from_float.masks, full.masks)
    assert windowed.valid.all()
    torch.testing.assert_close(windowed.centroids, full.centroids, atol=1e-4, rtol=0)
    # The object itself, without the line's pixels beyond 2 px of its body.
    assert (windowed.masks & torch.as_tensor(truth)).sum() == truth.sum()
    assert not windowed.masks[:, 86:90, 2:6].any()
    boxes = windowed.boxes
    ys, xs = np.nonzero(windowed.masks[5].numpy())
    assert boxes[5].tolist() == [ys.min(), ys.max() + 1, xs.min(), xs.max() + 1]


def test_a_blob_joined_only_by_a_thread_is_not_the_object():
    """A 5x5 patch with a body of its own, joined to the object only by a 1-px thread: the cleanup
    cuts the thread, and the object is chosen again, so the patch leaves the mask (with it, the
    centroid moved by about 25 px x 35 / 194 = 4.5 px)."""
    t, h, w = 4, 64, 96
    plate, frames, truth = _box_on_plate(2, t, h, w, lambda i: (20, 32, 10 + 4 * i, 24 + 4 * i))  # 12 x 14 = 168 px
    frames[:, 25, 24:50] = (230, 40, 30)  # the thread, from the object's right edge on
    frames[:, 23:28, 50:55] = (230, 40, 30)  # the patch at its end
    u8 = bench_grid_frames(frames, (h, w))
    ex = extract(u8, torch.as_tensor(truth[0]), _chw(frames[0]), _chw(plate))
    # the object, and of the thread only its first pixel (within 2 px of the object's eroded body)
    want = truth.copy()
    for i in range(t):
        want[i, 25, 24 + 4 * i] = True
    assert torch.equal(ex.masks, torch.as_tensor(want))
    ys, xs = np.nonzero(want[0])
    torch.testing.assert_close(ex.centroids[0], torch.tensor([xs.mean(), ys.mean()], dtype=torch.float32))


def _walls_and_a_red_box(walls: dict[int, tuple[int, int, int]]):
    """A dark plate, 96x128, with walls of the given colours from the given columns to the right
    edge, and 8 frames of a red 10x10 box moving over the dark part: plate, frames (uint8), the
    true masks and centroids (u, v)."""
    t, h, w = 8, 96, 128
    plate = np.full((h, w, 3), 40, np.uint8)
    for x, colour in walls.items():
        plate[:, x:] = colour
    frames = np.repeat(plate[None], t, 0)
    truth = np.zeros((t, h, w), bool)
    for i in range(t):
        truth[i, 20 + 4 * i:30 + 4 * i, 10 + 3 * i:20 + 3 * i] = True
    frames[truth] = (230, 40, 30)
    want = torch.tensor([[m.nonzero()[1].mean(), m.nonzero()[0].mean()] for m in truth], dtype=torch.float32)
    return plate, frames, truth, want


def test_frames_softer_than_the_plate_are_matched():
    """One sharp edge between a dark and an orange wall, top to bottom. In frames blurred by 2 px
    it becomes a band of mixtures, redder than the dark wall and longer than the small red object:
    the band wins unless the plate is blurred to match. The blur is measured exactly (it is on
    the ladder), and the object found exactly."""
    import cv2

    from newtonbench.metrics.extract import _softness

    plate, frames, truth, want = _walls_and_a_red_box({64: (250, 70, 50)})
    h, w = truth.shape[1:]
    pl = bench_grid_frames(plate[None], (h, w))[0]
    for sigma in (0.0, 1.0, 2.0):
        blurred = bench_grid_frames(np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in frames]) if sigma else frames,
                                    (h, w))
        assert _softness(blurred, pl, np.ones(3), np.zeros(3)) == sigma
        ex = extract(blurred, torch.as_tensor(truth[0]), _chw(frames[0]), _chw(plate))
        torch.testing.assert_close(ex.centroids, want, atol=1e-3, rtol=0)
    unmatched = extract(blurred, torch.as_tensor(truth[0]), _chw(frames[0]), _chw(plate), ExtractConfig(soft_ratio=0.0))
    assert (unmatched.centroids - want).abs().max() > 40  # the band
    flat = bench_grid_frames(np.full((1, h, w, 3), 100, np.uint8), (h, w))
    assert _softness(flat, flat[0], np.ones(3), np.zeros(3)) == 0.0  # no edges: nothing to match


def test_softness_is_measured_in_the_videos_colours():
    """Three walls, frames with their channels swapped (BGR) and blurred by 2 px. Before the colour
    map the per-channel drift cannot predict the plate's edges at any blur, so the softness test
    finds nothing; it is measured again once the plate is in the video's colours. Without that
    second measurement the sharp plate's edges won: 28.5 px off."""
    import cv2

    plate, frames, truth, want = _walls_and_a_red_box({43: (250, 70, 50), 86: (60, 180, 120)})
    h, w = truth.shape[1:]
    swapped = np.stack([cv2.GaussianBlur(np.ascontiguousarray(f[..., ::-1]), (0, 0), 2.0) for f in frames])
    ex = extract(bench_grid_frames(swapped, (h, w)), torch.as_tensor(truth[0]), _chw(frames[0]), _chw(plate))
    assert bool(ex.valid.all())
    assert float((ex.centroids - want).abs().max()) < 1.0  # 0.65 px measured (the blur's own bias)


@pytest.mark.parametrize("uint8", [False, True])
def test_drift_fit_recovers_gain_and_offset_around_the_object(uint8):
    from newtonbench.metrics.extract import _drift_fit

    rng = np.random.default_rng(4)
    bg = torch.from_numpy(rng.uniform(0.1, 0.8, (3, 64, 64)).astype(np.float32))
    g = torch.tensor([[1.1, 0.9, 1.05], [0.95, 1.0, 1.2]]).reshape(2, 3, 1, 1)
    o = torch.tensor([[0.02, -0.03, 0.0], [0.0, 0.05, -0.02]]).reshape(2, 3, 1, 1)
    frames = g * bg + o
    frames[:, :, 10:22, 30:42] = torch.tensor([1.0, 0.0, 0.0]).reshape(3, 1, 1)  # the object: an outlier
    if uint8:  # the decoder's layout: uint8, channels-last strides
        frames = (frames * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    fg, fo, sigma = _drift_fit(frames, bg)
    tol = 4e-3 if uint8 else 1e-5  # rounding to 1/255 is the only noise
    torch.testing.assert_close(fg, g, atol=tol, rtol=0)
    torch.testing.assert_close(fo, o, atol=tol, rtol=0)
    assert (sigma <= (4e-3 if uint8 else 1e-5)).all()


def test_colour_fit_recovers_a_full_map_around_outliers():
    from newtonbench.metrics.extract_kernels import colour_fit

    # plate colours b, frame colours f = [b, 1] @ beta (channels nearly swapped, or per-channel
    # gains), a tenth of the pixels replaced by the object's: the robust fit recovers beta exactly
    rng = np.random.default_rng(0)
    b = rng.random((3000, 3))
    mix = np.array([[0.1, 0.0, 0.9], [0.05, 1.0, 0.1], [0.85, 0.0, 0.0], [0.02, -0.01, 0.03]])
    gains = np.array([[1.1, 0.0, 0.0], [0.0, 0.9, 0.0], [0.0, 0.0, 1.05], [0.02, -0.03, 0.01]])
    out = rng.random(3000) < 0.1
    for beta in (mix, gains):
        f = np.concatenate([b, np.ones((3000, 1))], 1) @ beta
        f[out] = rng.random((int(out.sum()), 3))
        np.testing.assert_allclose(colour_fit(np.ascontiguousarray(f), b, 3, 0.03), beta, atol=1e-9)
        # plain least squares is pulled off by the outliers
        assert np.abs(np.linalg.lstsq(np.concatenate([b, np.ones((3000, 1))], 1), f, rcond=None)[0] - beta).max() > 0.02


@pytest.mark.parametrize("uint8", [False, True])
def test_palette_samples_the_eroded_mask_in_raster_order(uint8):
    """The object's colours: pixels of the 3x3-eroded first mask (outside the image set, as the
    torch erosion: a mask at the image's edge keeps its edge pixels), evenly spaced in raster order."""
    from newtonbench.metrics.extract import _palette
    from newtonbench.metrics.functional._util import erode

    rng = np.random.default_rng(7)
    image = torch.from_numpy(rng.random((3, 20, 24)).astype(np.float32))
    if uint8:  # the decoder's layout: uint8, channels-last strides
        image = (image * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().permute(2, 0, 1)
    mask = torch.zeros(20, 24, dtype=torch.bool)
    mask[0:9, 0:11] = True  # at the image's corner
    mask[15, 5] = True  # a lone pixel: eroded away
    core = erode(mask)
    want = image[:, core].T.to(torch.float32) / (255.0 if uint8 else 1.0)  # [M, 3] raster order
    assert len(want) == 8 * 10  # rows 0-7, columns 0-9: the image's edge does not erode
    torch.testing.assert_close(_palette(image, mask, 1000), want, rtol=0, atol=0)
    pick = torch.linspace(0, len(want) - 1, 16).long()
    torch.testing.assert_close(_palette(image, mask, 16), want[pick], rtol=0, atol=0)
    thin = torch.zeros(20, 24, dtype=torch.bool)
    thin[4, 3:9] = True  # a 1-px line: nothing survives the erosion, the whole mask counts
    torch.testing.assert_close(_palette(image, thin, 64), image[:, thin].T.to(torch.float32) / (255.0 if uint8 else 1.0))


def test_kth_smallest_is_the_partition_value():
    """The drift fit's median selection (quickselect, in place) against np.partition: odd and even
    lengths, ties, sorted and reversed inputs, every rank of a small array."""
    from newtonbench.metrics.extract_kernels import _kth_smallest

    rng = np.random.default_rng(6)
    cases = [rng.random(n) ** 3 for n in (1, 2, 3, 10, 2704)] + [np.round(rng.random(501), 2), np.arange(100.0),
                                                                  np.arange(100.0)[::-1].copy(), np.full(8, 0.5)]
    for a in cases:
        for k in {0, (len(a) - 1) // 2, len(a) - 1}:
            assert _kth_smallest(a.copy(), k) == np.partition(a, k)[k]
    a = rng.integers(0, 5, 12).astype(np.float64)
    assert [_kth_smallest(a.copy(), k) for k in range(12)] == sorted(a.tolist())


@pytest.mark.parametrize("uint8", [False, True])
def test_foreground_gate_matches_numpy(uint8):
    """The compiled foreground test against the formula in plain NumPy (float64), on the whole
    frame, and its lattice, windows and patches as the matching parts of that frame."""
    from newtonbench.metrics.extract import _Gate

    rng = np.random.default_rng(5)
    n, h, w = 3, 9, 11
    frames = rng.random((n, 3, h, w)).astype(np.float32)
    bg = rng.random((3, h, w)).astype(np.float32)
    g = rng.uniform(0.8, 1.2, (n, 3, 1, 1)).astype(np.float32)
    o = rng.uniform(-0.05, 0.05, (n, 3, 1, 1)).astype(np.float32)
    thr = np.array([0.2, 0.3, 0.25], np.float32)
    pal = rng.random((7, 3)).astype(np.float32)
    strong = 0.6
    unit = 255.0 if uint8 else 1.0
    if uint8:
        frames = (frames * 255).round().astype(np.uint8)
    corr = (frames / unit - o) / g  # [N, 3, H, W] float64
    dist = np.sqrt(((corr - bg) ** 2).sum(1))  # [N, H, W]
    to_pal = np.sqrt(((corr.transpose(0, 2, 3, 1)[..., None, :] - pal) ** 2).sum(-1)).min(-1)
    want = (dist > thr[:, None, None]) & ((dist > strong) | (to_pal < dist))
    assert 0 < want.sum() < want.size and (want != (dist > thr[:, None, None])).any()  # both tests bite

    gate = _Gate(torch.from_numpy(frames), torch.from_numpy(bg), torch.from_numpy(g), torch.from_numpy(o),
                 torch.from_numpy(thr), torch.from_numpy(pal), strong)
    np.testing.assert_array_equal(gate.windows([0] * n, [0] * n, h, w), want)
    ys, xs = np.array([0, 3, 8]), np.array([1, 4, 10])
    np.testing.assert_array_equal(gate.lattice(ys, xs), want[:, ys][:, :, xs])
    np.testing.assert_array_equal(gate.windows([0, 4, 2], [3, 0, 6], 5, 5),
                                  np.stack([want[0, 0:5, 3:8], want[1, 4:9, 0:5], want[2, 2:7, 6:11]]))


def test_lattice_hits_without_a_3x3_block_are_dropped():
    """confirm_hits keeps the lattice hits on a 4x4 square (one has a 3x3 block of foreground
    around it) and drops those on a 1-px line across the frame (none has), and boxes the rest."""
    from newtonbench.metrics.extract import _Gate

    h, w = 20, 24
    frames = np.zeros((2, 3, h, w), np.float32)
    frames[0, :, 9:13, 6:10] = 1.0  # the object: a 4x4 square
    frames[0, :, 3, :] = 1.0  # a 1-px line (a codec-smeared edge of the scene)
    frames[1, :, 15, :] = 1.0  # frame 1: only a line
    ones, zeros = torch.ones(2, 3, 1, 1), torch.zeros(2, 3, 1, 1)
    gate = _Gate(torch.from_numpy(frames), torch.zeros(3, h, w), ones, zeros, torch.full((2,), 0.1),
                 torch.zeros(0, 3), 0.3)
    ly, lx = np.r_[np.arange(0, h, 3), h - 1], np.r_[np.arange(0, w, 3), w - 1]
    hits = gate.lattice(ly, lx)
    assert hits[0, 1].all() and hits[1, 5].all()  # the lines are hit along the whole lattice row
    box = gate.confirm(hits, ly, lx)
    kept = np.argwhere(hits[0])
    assert {(ly[i], lx[j]) for i, j in kept} == {(9, 6), (9, 9), (12, 6), (12, 9)}
    assert not hits[1].any()
    assert box.tolist() == [[3, 5, 2, 4], [0, 0, 0, 0]]


def test_object_components_keep_the_component_with_the_most_core_pixels():
    """object_components against a reference from OpenCV's labelling: per frame, the 8-connected
    component of the dilated candidates with the most candidates surviving a 3x3 erosion (torch
    definitions: outside the window unset for dilation, set for erosion), ties to the larger one."""
    import cv2

    from newtonbench.metrics import extract_kernels
    from newtonbench.metrics.functional._util import dilate, erode

    rng = np.random.default_rng(5)
    n, a, b = 10, 24, 30
    win = rng.random((n, a, b)) < 0.18  # speckle: many small components, few core pixels
    win[8] = False  # a "U" and a "V": arms labelled apart, joined further down
    win[8, 2:15, 3:6] = win[8, 2:15, 12:15] = win[8, 12:15, 3:15] = True
    win[8, 2:10, 20] = win[8, 9, 20:27] = True
    win[8, 4:9, 26] = True
    win[9] = rng.random((a, b)) < 0.35  # denser speckle: long chains of joins
    win[:4] = False  # frames 0-3: shapes alone
    win[0, 3:8, 4:9] = True  # a 5x5 blob (9 core pixels) ...
    win[0, 14:16, 2:28] = True  # ... beats a long 2-px thread (more pixels, no core)
    win[1, 0:4, 0:6] = True  # a blob at the window's corner: outside counts as set for the erosion
    win[1, 15:19, 20:24] = True  # 4x4 blob, 4 core pixels, against the corner blob's 6 x 1
    win[2, 2:5, 2:5] = win[2, 12:15, 20:23] = True  # two equal 3x3 blobs: the first in raster order
    win[2, 12, 19] = True  # ... unless the other is larger
    win[3, 2:5, 2:5] = win[3, 12:15, 20:23] = True  # a tie in both: the first in raster order
    win[5] = False  # nothing
    win[4, :, 10] = True  # a thread joining speckle across the window
    got = win.astype(np.uint8)
    extract_kernels.object_components(got)

    grown = dilate(torch.from_numpy(win)).numpy()
    core = erode(torch.from_numpy(win)).numpy()
    want = np.zeros_like(win)
    for k in range(n):
        count, labels = cv2.connectedComponents(grown[k].astype(np.uint8), connectivity=8)
        if count <= 1:
            continue
        weight = np.bincount(labels[core[k]], minlength=count)[1:]
        area = np.bincount(labels.ravel(), minlength=count)[1:]
        first = np.array([np.flatnonzero(labels.ravel() == i)[0] for i in range(1, count)])
        best = np.lexsort((first, -area, -weight))[0] + 1
        want[k] = win[k] & (labels == best)
    np.testing.assert_array_equal(got.astype(bool), want)
    assert want[0, 3:8, 4:9].all() and not want[0, 14].any()
    assert want[1, 0:4, 0:6].all() and not want[1, 15:19, 20:24].any()
    assert want[2, 12:15, 20:23].all() and not want[2, 2:5, 2:5].any()
    assert want[3, 2:5, 2:5].all() and not want[3, 12:15, 20:23].any()
    assert not want[5].any() and all(want[k].any() for k in (0, 1, 2, 3, 4, 6, 7, 8, 9))
    assert want[8, 2:15, 3:6].all() and want[8, 2:15, 12:15].all() and not want[8, :, 20:].any()


def test_window_cleanup_and_placement_match_the_torch_definitions():
    """open_close is dilate5(erode3(m)) & m, then erode3(dilate3(.)) | . (the torch morphology:
    outside a window counts as set for erosion, unset for dilation); _measure_windows gives each
    window's area, the threshold's validity, mask_centroids and mask_boxes in frame coordinates,
    and place_masks the valid frames' masks on any region of the image."""
    from newtonbench.metrics import extract_kernels
    from newtonbench.metrics.extract import _measure_windows, place_masks
    from newtonbench.metrics.functional._util import dilate, erode, mask_boxes
    from newtonbench.metrics.functional.centroid import mask_centroids

    rng = np.random.default_rng(3)
    n, a, b, h, w = 6, 15, 17, 40, 50
    win = rng.random((n, a, b)) < 0.55  # speckle: holes, 1-px threads, blobs at the window edges
    win[1, 2:9, 3:12] = True
    win[1, 5, :] = True  # a thread across the window
    win[4] = False  # nothing found
    win[5] = False
    win[5, 7, 7] = True  # one pixel: under the area threshold
    m = torch.from_numpy(win)
    opened = dilate(erode(m), 5) & m
    want = erode(dilate(opened)) | opened
    got = win.astype(np.uint8)
    opened_frames = extract_kernels.open_close(got)
    np.testing.assert_array_equal(got.astype(bool), want.numpy())
    np.testing.assert_array_equal(opened_frames, (opened != m).any((1, 2)).numpy())
    assert not opened_frames[4] and opened_frames[5]
    assert 0 < want.sum() < m.sum()  # the cleanup did something both ways
    y0, x0 = np.array([0, 25, 3, 10, 7, 20]), np.array([0, 33, 20, 5, 1, 9])
    cleaned = want.clone()
    cleaned[5, 7, 7] = True
    placed = cleaned.numpy().astype(np.uint8)
    cent, valid, area, boxes = _measure_windows(placed, y0, x0, 2.0)
    np.testing.assert_array_equal(area, cleaned.sum((1, 2)).numpy())
    np.testing.assert_array_equal(valid, area >= 2)
    assert not valid[4] and not valid[5] and valid[:4].all()
    kept = cleaned & torch.from_numpy(valid)[:, None, None]
    np.testing.assert_array_equal(placed, kept.numpy())  # frames under the threshold cleared
    c, _ = mask_centroids(kept)
    np.testing.assert_array_equal(cent, (c + torch.tensor(np.stack([x0, y0], 1), dtype=torch.float32)).numpy())
    off = np.stack([y0, y0, x0, x0], 1)
    box = mask_boxes(kept).numpy()
    np.testing.assert_array_equal(boxes, np.where(box[:, 1:2] > 0, box + off, 0))
    full = np.zeros((n, h, w), bool)
    for k in range(n):
        full[k, y0[k]:y0[k] + a, x0[k]:x0[k] + b] = kept[k].numpy()
    # on the whole image, and on a region cutting through the windows, for chosen frames
    np.testing.assert_array_equal(place_masks(placed, y0, x0, (0, h, 0, w)).numpy(), full)
    picks = np.array([3, 1, 1, 0])
    np.testing.assert_array_equal(place_masks(placed, y0, x0, (12, 30, 8, 41), picks).numpy(), full[picks, 12:30, 8:41])
    # one corner for every frame (the ground truth's box over all frames)
    shared = np.zeros((n, h, w), bool)
    shared[:, 5:5 + a, 7:7 + b] = kept.numpy()
    np.testing.assert_array_equal(place_masks(placed, 5, 7, (0, h, 0, w)).numpy(), shared)


def test_core_near_edges_matches_the_eroded_bands():
    """The windows' grow test: whether the 3x3-eroded candidates reach into the r-px band along
    each edge, as torch's erosion (outside counts as set) and a max over the band give it."""
    from newtonbench.metrics import extract_kernels
    from newtonbench.metrics.functional._util import any_set, erode

    rng = np.random.default_rng(4)
    cand = rng.random((40, 14, 16)) < 0.6
    cand[0] = False
    cand[1, 5:9, 6:10] = True  # a block clear of every band
    cand[1, :5] = cand[1, -5:] = cand[1, :, :5] = cand[1, :, -5:] = False
    core = erode(torch.from_numpy(cand))
    r = 5
    want = torch.stack([any_set(core[:, :r]), any_set(core[:, -r:]), any_set(core[:, :, :r]),
                        any_set(core[:, :, -r:])], 1).numpy()
    np.testing.assert_array_equal(extract_kernels.core_near_edges(cand, r), want)
    assert want.any() and not want.all() and not want[:2].any()


def _landing_scene(flicker=0.0, grey=False):
    """An object that sits at its start for 10 frames, falls for 6, and rests for the last 16
    (a plain temporal median would put it in the background twice). With `grey`, half its
    squares are the scene's own grey (a median that skips object-like colours would keep only the
    object's frames where it starts)."""
    rng = np.random.default_rng(1)
    t = 32
    lo, span = (0.45, 0.1) if grey else (0.35, 0.3)
    bg = torch.tensor(rng.random((3, 64, 64)) * span + lo, dtype=torch.float32)
    masks = torch.zeros(t, 64, 64, dtype=torch.bool)
    obj = torch.tensor([0.9, 0.2, 0.1])[:, None, None].repeat(1, 8, 8)
    if grey:
        obj[:, ::2, ::2] = obj[:, 1::2, 1::2] = 0.5
    frames = bg.repeat(t, 1, 1, 1)
    for i in range(t):
        y = 4 + 7 * min(max(i - 9, 0), 6)
        masks[i, y:y + 8, 20:28] = True
        frames[i, :, y:y + 8, 20:28] = obj
    offsets = torch.from_numpy(rng.uniform(-flicker, flicker, (t, 1, 1, 1)).astype(np.float32))
    return (frames + offsets).clamp(0, 1), masks, bg


def _reference_self_background(frames, region, stable, min_run):
    """The `self` background's rule as whole-frame torch ops (its first implementation): frames
    float64 [N, 3, H, W] in [0, 1], region bool [H, W] -> bg [3, H, W], opening, none [H, W]."""
    n = frames.shape[0]
    centred = frames - frames.mean((2, 3), keepdim=True)
    moved = (centred[1:] - centred[:-1]).square().sum(1).sqrt() > stable
    start = torch.zeros(frames.shape[:1] + frames.shape[2:], dtype=torch.long)
    end = torch.full_like(start, n - 1)
    for i in range(1, n):
        start[i] = torch.where(moved[i - 1], i, start[i - 1])
        end[n - 1 - i] = torch.where(moved[n - 1 - i], n - 1 - i, end[n - i])
    counts = (end - start + 1 >= min_run) | ((start == 0) & ~region)
    k = torch.arange(n).view(n, 1, 1)
    order = torch.where(region, k, n - 1 - k)  # the latest counting frame inside, the earliest outside
    best = torch.where(counts, order, -1).amax(0)
    pick = torch.where(region, best, n - 1 - best).clamp(0, n - 1)
    run_start = start.gather(0, pick[None])[0]
    in_run = (start == run_start).double()
    bg = (frames * in_run[:, None]).sum(0) / in_run.sum(0)
    none = best < 0
    bg[:, none] = frames[:, :, none].median(0).values  # the lower middle, as the kernel
    return bg, (run_start == 0) & ~none, none


@pytest.mark.parametrize("uint8", [True, False])
def test_self_background_kernel_matches_the_rule_as_torch_ops(uint8):
    from newtonbench.metrics import extract_kernels

    rng = np.random.default_rng(5)
    n, h, w = 12, 20, 24
    # per pixel, a colour that jumps (by 60-120 levels) at random frames, often enough that some
    # runs are shorter than 3 frames, plus a few levels of noise and a global flicker
    jumps = rng.random((n, h, w)) < 0.25
    jumps[:, 7:9, 6:9] = True  # a new colour every frame, inside the region: no run counts (the median)
    jumps[:, 3:5, :] = False  # still for the whole clip
    jumps[0] = False
    colour = np.empty((n, h, w, 3))
    colour[0] = rng.uniform(60, 195, (h, w, 3))
    for k in range(1, n):
        step = rng.uniform(50, 80, (h, w, 3)) * np.where(colour[k - 1] > 127, -1, 1)
        colour[k] = np.where(jumps[k, ..., None], colour[k - 1] + step, colour[k - 1])
    frames = colour + rng.uniform(-2, 2, colour.shape) + rng.uniform(-6, 6, (n, 1, 1, 1))
    frames = np.clip(frames, 0, 255)
    frames = frames.round().astype(np.uint8) if uint8 else (frames / 255).astype(np.float32)
    region = np.zeros((h, w), bool)
    region[6:15, 5:17] = True
    unit = 255.0 if uint8 else 1.0
    bg, opening, none = extract_kernels.self_background(frames, region, unit, 0.06, 3)
    ref = torch.from_numpy(frames).double().permute(0, 3, 1, 2) / unit
    want_bg, want_opening, want_none = _reference_self_background(ref, torch.from_numpy(region), 0.06, 3)
    np.testing.assert_array_equal(none, want_none.numpy())
    np.testing.assert_array_equal(opening, want_opening.numpy())
    np.testing.assert_allclose(bg, want_bg.permute(1, 2, 0).numpy(), atol=1e-6, rtol=0)
    # every case met: the median, the opening run, a later run inside the region
    assert none.any() and opening.any() and (~opening & ~none & region).any()


@pytest.mark.parametrize("grey", [False, True])
def test_self_background_keeps_starting_and_landed_objects_out(grey):
    from newtonbench.metrics.extract import _self_background

    frames, masks, bg = _landing_scene(grey=grey)
    # exact, but where grey squares pass over grey scene the runs cannot split them: there the
    # background stays within the foreground threshold (0.04) of the scene
    torch.testing.assert_close(_self_background(frames, masks[0]), bg, atol=0.04 if grey else 1e-6, rtol=0)


def test_self_mode_finds_an_object_that_never_moves():
    # A frozen video (the failure the benchmark exists to catch) never shows the scene behind the
    # object: that part of the background is filled in from the scene around it, not taken from
    # the object, so the object is found where it sits in every frame.
    from newtonbench.metrics.extract import _self_background

    frames, masks, bg = _landing_scene()
    frozen = frames[:1].repeat(len(frames), 1, 1, 1)
    fill = _self_background(frozen, masks[0])
    hole = masks[0]
    torch.testing.assert_close(fill[:, ~hole], bg[:, ~hole], atol=1e-6, rtol=0)  # seen: exact
    # unseen: a colour of the scene (its values lie in [0.35, 0.65]), far from the object's
    assert fill[:, hole].min() >= 0.35 - 1 / 255 and fill[:, hole].max() <= 0.65 + 1 / 255
    assert (fill[:, hole] - frozen[0][:, hole]).square().sum(0).sqrt().min() > 0.3
    ex = extract(frozen, masks[0], frozen[0], None, ExtractConfig(mode="self"))
    assert ex.valid.all()
    assert (ex.masks == masks[0]).all()


@pytest.mark.parametrize("flicker", [0.0, 0.08])
def test_self_mode_finds_starting_and_landed_objects(flicker):
    # global flicker (each frame's brightness offset by up to 0.08) neither breaks the background
    # nor the masks
    frames, masks, _ = _landing_scene(flicker)
    ex = extract(frames, masks[0], frames[0], None, ExtractConfig(mode="self"))
    assert ex.valid.all()
    assert (ex.masks == masks).all()
