"""Each kernel against a plain NumPy reference and a hand-computed answer; CUDA == CPU."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from newtonbench.metrics.functional._util import count_set, mask_boxes
from newtonbench.metrics.functional.centroid import mask_centroids
from newtonbench.metrics.functional.chamfer import chamfer_distance, chamfer_per_frame
from newtonbench.metrics.functional.consistency import consistency, consistency_terms
from newtonbench.metrics.functional.iou import mask_iou
from newtonbench.metrics.functional.l2 import l2_distance
from newtonbench.metrics.functional.motion import (
    accel_ratio,
    acceleration_rmse,
    fit_acceleration,
    pixel_accel_to_world,
    velocity_rmse,
)
from newtonbench.metrics.functional.pisa import pisa_chamfer, pisa_frame_indices, pisa_iou, pisa_l2
from newtonbench.metrics.functional.smoothness import smoothness


@pytest.fixture(params=["compiled", "torch"])
def backend(request, monkeypatch):
    """The mask metrics, centroids, boxes and counts run compiled loops for CPU tensors and torch ops on
    other devices: tests that take this fixture check both against the references, on the CPU (the torch path is what a GPU
    runs; test_cuda_matches_cpu checks it there too)."""
    if request.param == "torch":
        from newtonbench.metrics.functional import _util, centroid, chamfer, consistency, iou

        monkeypatch.setattr(centroid, "_centroids_compiled", centroid._centroids_torch)
        monkeypatch.setattr(_util, "_boxes_compiled", _util._boxes_torch)
        monkeypatch.setattr(_util, "_count_compiled", _util._count_torch)
        monkeypatch.setattr(chamfer, "_per_frame_compiled", chamfer._per_frame_torch)
        monkeypatch.setattr(consistency, "_frame_stats_compiled", consistency._frame_stats_torch)
        monkeypatch.setattr(iou, "_overlap_compiled", iou._overlap_torch)
    return request.param


def _random_masks(rng, b=2, t=4, h=12, w=10, p=0.25):
    m = rng.random((b, t, h, w)) < p
    m[0, 1] = False  # an empty prediction frame
    return m


# --- NumPy references (written from the definitions, loops and all) ---------------------------

def np_chamfer_frame(a, b):
    pa, pb = np.argwhere(a).astype(float), np.argwhere(b).astype(float)
    if len(pa) == 0 or len(pb) == 0:
        return np.nan
    d = np.sqrt(((pa[:, None] - pb[None]) ** 2).sum(-1))
    return d.min(1).mean() + d.min(0).mean()


def np_iou_frame(a, b):
    inter, union = np.logical_and(a, b).sum(), np.logical_or(a, b).sum()
    return 1.0 if union == 0 else inter / union


def np_centroid(m):
    ys, xs = np.nonzero(m)
    return (xs.mean(), ys.mean()) if len(xs) else (np.nan, np.nan)


def test_centroid_matches_numpy(backend):
    rng = np.random.default_rng(0)
    m = _random_masks(rng)
    c, ok = mask_centroids(torch.from_numpy(m))
    for b in range(m.shape[0]):
        for t in range(m.shape[1]):
            ref = np_centroid(m[b, t])
            assert bool(ok[b, t]) == (not np.isnan(ref[0]))
            if ok[b, t]:
                np.testing.assert_allclose(c[b, t].numpy(), ref, atol=1e-5)


def np_box(m):
    ys, xs = np.nonzero(m)
    return (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1) if len(ys) else (0, 0, 0, 0)


@pytest.mark.parametrize("view", ["contiguous", "offset", "odd_width", "strided"])
def test_boxes_counts_and_centroids_match_numpy_on_every_layout(view, backend):
    # Rows are read as int64 words when the layout allows (contiguous, width a multiple of 8, an
    # aligned start), byte by byte otherwise: every layout must give the same boxes.
    rng = np.random.default_rng(7)
    full = np.zeros((5, 20, 33), bool)
    for k, (y, x) in enumerate([(3, 4), (0, 0), (15, 25), (7, 30)]):
        full[k, y:y + 4, x:x + 3] = rng.random((4, 3)) < 0.8
        full[k, y, x] = True
    full[2, 19, 32] = True  # a pixel in the last row and column; frame 4 stays empty
    t = torch.from_numpy(full)
    m = {"contiguous": t[:, :, :32].contiguous(), "offset": t[:, :, :32].flatten()[3:3 + 4 * 20 * 32].view(4, 20, 32),
         "odd_width": t, "strided": t[:, ::2, 1:]}[view]
    if view == "offset":
        assert m.storage_offset() % 8 != 0 and m.is_contiguous()
    ref = m.numpy()
    np.testing.assert_array_equal(mask_boxes(m).numpy(), [np_box(f) for f in ref])
    np.testing.assert_array_equal(count_set(m).numpy(), ref.sum((1, 2)))
    np.testing.assert_array_equal(count_set(m[None]).numpy(), ref.sum((1, 2))[None])  # leading dims kept
    for masks in (m, m.to(torch.uint8), m.to(torch.float64)):
        c, ok = mask_centroids(masks, torch.float64)
        for k, f in enumerate(ref):
            assert bool(ok[k]) == bool(f.any())
            if f.any():
                np.testing.assert_allclose(c[k].numpy(), np_centroid(f), rtol=0, atol=1e-12)


def test_chamfer_matches_numpy_and_known_shift(backend):
    rng = np.random.default_rng(1)
    a, b = _random_masks(rng), _random_masks(rng, p=0.1)
    per = chamfer_per_frame(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    ref = np.array([[np_chamfer_frame(a[i, t], b[i, t]) for t in range(a.shape[1])] for i in range(a.shape[0])])
    np.testing.assert_allclose(per, ref, atol=1e-5, equal_nan=True)
    got = chamfer_distance(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(got, np.nanmean(ref, axis=1), atol=1e-5)
    # A 6x6 square shifted right by 3 px: columns 5, 6, 7 of A lie 3, 2, 1 px from B, the rest 0;
    # directed mean 6 * (3 + 2 + 1) / 36 = 1 each way, PISA's sum 2.
    sq = np.zeros((1, 1, 20, 20), bool)
    sq[..., 5:11, 5:11] = True
    sh = np.roll(sq, 3, axis=-1)
    assert chamfer_distance(torch.from_numpy(sq), torch.from_numpy(sh)).item() == pytest.approx(2.0)


def test_iou_matches_numpy_with_pisa_empty_rule(backend):
    rng = np.random.default_rng(2)
    a, b = _random_masks(rng), _random_masks(rng)
    b[0, 1] = False  # both empty -> 1 (PISA)
    ref = np.array([[np_iou_frame(a[i, t], b[i, t]) for t in range(a.shape[1])] for i in range(a.shape[0])]).mean(1)
    np.testing.assert_allclose(mask_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy(), ref, atol=1e-6)
    np.testing.assert_allclose(pisa_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy(), ref, atol=1e-6)


def test_l2_shift_and_invalid_frames():
    gt = torch.randn(3, 8, 2, dtype=torch.float64) * 20
    pred = gt + torch.tensor([3.0, 4.0], dtype=torch.float64)  # 5 px away
    valid = torch.ones(3, 8, dtype=torch.bool)
    valid[1, :4] = False
    pred[1, :4] = float("nan")
    valid[2] = False
    out = l2_distance(pred, gt, valid)
    assert out[:2].tolist() == pytest.approx([5.0, 5.0])
    assert math.isnan(out[2].item())  # nothing to compare: undefined, not 0


def test_pisa_l2_and_chamfer_match_their_formula():
    rng = np.random.default_rng(3)
    gt = rng.normal(size=(2, 6, 2)) * 10
    pred = gt + rng.normal(size=gt.shape)
    valid = np.ones((2, 6), bool)
    h = 48
    ref = np.nanmean(np.sqrt((gt - pred) ** 2), axis=(1, 2)) / np.sqrt(2) / h
    got = pisa_l2(torch.from_numpy(pred), torch.from_numpy(gt), torch.from_numpy(valid), h).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-9)
    a, b = _random_masks(rng, h=h, w=20), _random_masks(rng, h=h, w=20)
    per = np.array([[np_chamfer_frame(a[i, t], b[i, t]) for t in range(4)] for i in range(2)])
    np.testing.assert_allclose(pisa_chamfer(torch.from_numpy(a), torch.from_numpy(b)).numpy(),
                               np.nanmean(per, 1) / np.sqrt(2) / h, atol=1e-6)
    # the same masks placed in a larger image: its crop around them (2-px ring) with the image's
    # height gives the whole image's numbers, as the scorer computes them
    big_a, big_b = (np.pad(m, ((0, 0), (0, 0), (30, 50), (40, 9))) for m in (a, b))
    crop = (slice(None), slice(None), slice(28, 30 + h + 2), slice(38, 40 + 20 + 2))
    whole = pisa_chamfer(torch.from_numpy(big_a), torch.from_numpy(big_b))
    np.testing.assert_allclose(whole.numpy(), np.nanmean(per, 1) / np.sqrt(2) / (h + 80), atol=1e-6)
    np.testing.assert_array_equal(
        pisa_chamfer(torch.from_numpy(big_a[crop]), torch.from_numpy(big_b[crop]), height=h + 80).numpy(), whole.numpy())
    np.testing.assert_array_equal(pisa_iou(torch.from_numpy(big_a[crop]), torch.from_numpy(big_b[crop])).numpy(),
                                  pisa_iou(torch.from_numpy(big_a), torch.from_numpy(big_b)).numpy())
    pred_idx, gt_idx = pisa_frame_indices(10, 8, 24.0, 16.0)
    assert gt_idx.tolist() == [int(i * 16 / 24) for i in range(10) if int(i * 16 / 24) < 8]
    assert pred_idx.tolist() == list(range(len(gt_idx)))


def test_velocity_acceleration_rmse_known_answer():
    fps = 16.0
    k = torch.arange(20, dtype=torch.float64)
    gt = torch.stack([2.0 * k, 0.5 * k**2], -1).unsqueeze(0)  # px: v = (2, k) px/frame, a = (0, 1) px/frame^2
    pred = torch.stack([2.0 * k, 0.8 * k**2], -1).unsqueeze(0)  # a off by 0.6 px/frame^2
    valid = torch.ones(1, 20, dtype=torch.bool)
    assert acceleration_rmse(pred, gt, valid, fps).item() == pytest.approx(0.6 * fps**2)
    # velocity error (c_{k+1}-c_k) = 0.3 (2k+1) px/frame on v only
    dv = 0.3 * (2 * np.arange(19) + 1) * fps
    assert velocity_rmse(pred, gt, valid, fps).item() == pytest.approx(np.sqrt(np.mean(dv**2)))
    scale = torch.tensor([[0.01, 0.02]], dtype=torch.float64)  # px -> m
    assert acceleration_rmse(pred, gt, valid, fps, scale).item() == pytest.approx(0.6 * fps**2 * 0.02)


def test_fit_acceleration_exact_on_parabola_and_numpy_polyfit():
    rng = np.random.default_rng(4)
    t = np.sort(rng.random((3, 12)) * 2, axis=1)
    a_true = np.array([[0.0, 9.81], [-3.0, 2.0], [1.5, -7.0]])
    pos = 4.0 + 2.0 * t[..., None] + 0.5 * a_true[:, None] * t[..., None] ** 2
    pos = pos + rng.normal(scale=0.01, size=pos.shape)
    w = np.ones((3, 12))
    w[1, :5] = 0
    got = fit_acceleration(torch.from_numpy(t), torch.from_numpy(pos), torch.from_numpy(w)).numpy()
    for b in range(3):
        keep = w[b] > 0
        ref = [2 * np.polyfit(t[b, keep], pos[b, keep, d], 2)[0] for d in range(2)]
        np.testing.assert_allclose(got[b], ref, rtol=1e-7, atol=1e-7)
    w[2, 2:] = 0  # two samples cannot fix an acceleration
    assert np.isnan(fit_acceleration(torch.from_numpy(t), torch.from_numpy(pos), torch.from_numpy(w)).numpy()[2]).all()


def test_world_conversion_and_ratio():
    a_px = torch.tensor([[0.0, 9.81 * 100.0]])  # falling: v grows downward in the image
    world = pixel_accel_to_world(a_px, 3.0, 300.0, 300.0)
    assert world[0].tolist() == pytest.approx([0.0, -9.81])
    assert accel_ratio(world * 0.5, torch.tensor([[0.0, -9.81]])).item() == pytest.approx(0.5)


def test_smoothness_parabola_one_jitter_low_frozen_zero_numpy():
    k = np.arange(32.0)
    track = np.stack([3.0 * k, 40 + 0.2 * k**2], -1)[None]
    valid = np.ones((1, 32), bool)
    t = lambda x: torch.from_numpy(np.ascontiguousarray(x))
    assert smoothness(t(track), t(valid)).item() > 0.9999
    rng = np.random.default_rng(5)
    jitter = track + rng.normal(scale=2.0, size=track.shape)
    frozen = np.repeat(track[:, :1], 32, axis=1)
    shuffled = track[:, rng.permutation(32)]
    s = smoothness(t(np.concatenate([jitter, frozen, shuffled])), t(np.repeat(valid, 3, 0)))
    assert s[0] < 0.9 and s[1] < 0.01 and s[2] < 0.2
    # NumPy reference of the definition (two segments split at frame 12, a bounce).
    seg = (k >= 12).astype(int)[None]
    bounce = np.where(k < 12, 0.2 * k**2, 0.2 * 12**2 - 4 * (k - 12) + 0.2 * (k - 12) ** 2)
    tr = np.stack([3.0 * k, bounce], -1)[None] + rng.normal(scale=0.3, size=(1, 32, 2))
    fit = np.empty_like(tr)
    for s_ in (0, 1):
        sel = seg[0] == s_
        for d in range(2):
            fit[0, sel, d] = np.polyval(np.polyfit(k[sel], tr[0, sel, d], 2), k[sel])
    r = tr - fit
    e_fit = (np.diff(fit, axis=1) ** 2).sum()
    e_res = (np.diff(r, axis=1) ** 2).sum()
    ref = e_fit / (e_fit + e_res + 0.05**2 * 31)
    assert smoothness(t(tr), t(valid), torch.from_numpy(seg)).item() == pytest.approx(ref, rel=1e-6)


def _scene(rng, t=6, h=24, w=24):
    bg = rng.random((3, h, w)) * 0.5 + 0.25
    frames = np.repeat(bg[None], t, 0).copy()
    masks = np.zeros((t, h, w), bool)
    for i in range(t):
        masks[i, 4 + i:10 + i, 6:12] = True
        frames[i][:, masks[i]] = np.array([0.9, 0.1, 0.1])[:, None]
    return frames[None], masks[None]


def test_consistency_terms_numpy_and_direction(backend):
    rng = np.random.default_rng(6)
    frames, masks = _scene(rng)
    valid = np.ones((1, 6), bool)
    t = torch.from_numpy
    c_true = consistency(t(frames), t(masks), t(valid)).item()
    assert c_true > 0.99
    flicker = frames * (1 + 0.1 * (np.arange(6) % 2))[None, :, None, None, None]
    recolour = frames.copy()
    recolour[0, 3:][:, :, masks[0, 3]] = 0.5  # colour changes halfway (and keeps its shape)
    for i in range(3, 6):
        recolour[0, i][:, masks[0, i]] = np.array([0.1, 0.1, 0.9])[:, None]
    shrink_m = masks.copy()
    shrink_m[0, 3:, :, 9:] = False
    out = consistency(t(np.concatenate([flicker, recolour, frames])),
                      t(np.concatenate([masks, masks, shrink_m])), t(np.repeat(valid, 3, 0)))
    assert (out < 0.6).all(), out
    # d_col by hand: frames 3..5 of 1..5 have chromaticity (0.1,0.1,0.9)/1.1 against (0.9,0.1,0.1)/1.1,
    # frames 1, 2 none: the median is the full distance sqrt(2) * 0.8 / 1.1
    d_col, d_shape, _ = consistency_terms(t(recolour), t(masks), t(valid))
    assert d_col.item() == pytest.approx(math.sqrt(2) * 0.8 / 1.1, rel=1e-5)
    assert d_shape.item() == pytest.approx(0.0, abs=1e-9)


def test_consistency_reads_uint8_frames_as_value_over_255(backend):
    # the scorer hands the kernel its uint8 crop: the same terms as the float frames / 255
    rng = np.random.default_rng(7)
    frames, masks = _scene(rng)
    u8 = np.round(frames * 255).astype(np.uint8)
    valid = torch.ones(1, 6, dtype=torch.bool)
    got = consistency_terms(torch.from_numpy(u8), torch.from_numpy(masks), valid)
    ref = consistency_terms(torch.from_numpy(u8.astype(np.float32) / 255), torch.from_numpy(masks), valid)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_chamfer_and_iou_do_not_depend_on_where_the_masks_sit(backend):
    # the kernels work on the box the masks occupy: padding the image around them changes nothing
    rng = np.random.default_rng(8)
    a, b = rng.random((2, 3, 12, 14)) < 0.3, rng.random((2, 3, 12, 14)) < 0.3
    pa, pb = np.zeros((2, 3, 40, 50), bool), np.zeros((2, 3, 40, 50), bool)
    pa[..., 20:32, 30:44], pb[..., 20:32, 30:44] = a, b
    t = torch.from_numpy
    torch.testing.assert_close(chamfer_per_frame(t(pa), t(pb)), chamfer_per_frame(t(a), t(b)))
    torch.testing.assert_close(mask_iou(t(pa), t(pb)), mask_iou(t(a), t(b)))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(7)
    a, b = torch.from_numpy(_random_masks(rng, h=32, w=32)), torch.from_numpy(_random_masks(rng, h=32, w=32))
    for fn in (chamfer_distance, mask_iou):
        torch.testing.assert_close(fn(a.cuda(), b.cuda()).cpu(), fn(a, b), equal_nan=True)
    c, _ = mask_centroids(a)
    cc, _ = mask_centroids(a.cuda())
    torch.testing.assert_close(cc.cpu(), c, equal_nan=True)
    tr = torch.randn(2, 16, 2, dtype=torch.float64).cumsum(1)
    v = torch.ones(2, 16, dtype=torch.bool)
    torch.testing.assert_close(smoothness(tr.cuda(), v.cuda()).cpu(), smoothness(tr, v))
    tt = torch.linspace(0, 1, 16, dtype=torch.float64).expand(2, 16)
    torch.testing.assert_close(fit_acceleration(tt.cuda(), tr.cuda(), v.cuda()).cpu(), fit_acceleration(tt, tr, v))
    frames, masks = _scene(rng)
    f, m = torch.from_numpy(frames).float(), torch.from_numpy(masks)
    vv = torch.ones(1, 6, dtype=torch.bool)
    torch.testing.assert_close(consistency(f.cuda(), m.cuda(), vv.cuda()).cpu(), consistency(f, m, vv))


def test_batched_equals_per_clip():
    """A kernel over a batch equals the kernel over each clip alone (torchmetrics' contract)."""
    rng = np.random.default_rng(8)
    a, b = torch.from_numpy(_random_masks(rng, b=4)), torch.from_numpy(_random_masks(rng, b=4))
    tr = torch.from_numpy(rng.normal(size=(4, 12, 2)).cumsum(1))
    v = torch.from_numpy(rng.random((4, 12)) > 0.2)
    seg = torch.from_numpy((np.arange(12) >= 5).astype(np.int64)).expand(4, 12)
    tt = torch.linspace(0, 1, 12, dtype=torch.float64).expand(4, 12)
    for fn, args in ((chamfer_distance, (a, b)), (mask_iou, (a, b)), (smoothness, (tr, v, seg)),
                     (fit_acceleration, (tt, tr, v)), (l2_distance, (tr, tr.flip(1), v))):
        whole = fn(*args)
        parts = torch.cat([fn(*(x[i:i + 1] for x in args)) for i in range(4)])
        torch.testing.assert_close(whole, parts, equal_nan=True)


def test_frame_windows_hold_each_frames_pixels_with_a_ring():
    from newtonbench.metrics.functional._util import crop_windows, frame_windows

    m = torch.zeros(3, 10, 12, dtype=torch.bool)
    m[0, 2:4, 4:7] = True  # rows [2, 4), columns [4, 7)
    m[1, 9, 0:2] = True  # at the bottom-left corner
    y0, x0, a, b = frame_windows(m)  # frame 2 is empty
    assert (a, b) == (2 + 2, 3 + 2)
    assert y0.tolist() == [1, 6, 0] and x0.tolist() == [3, 0, 0]
    win = crop_windows(m, y0, x0, a, b)
    for k in range(3):
        torch.testing.assert_close(win[k], m[k, y0[k]:y0[k] + a, x0[k]:x0[k] + b])
        assert int(win[k].sum()) == int(m[k].sum())


def test_chamfer_and_consistency_on_small_moving_objects_match_the_references(backend):
    # Small blobs that move across the image and touch its edges: the kernels' per-frame windows
    # must give exactly the whole-frame answers.
    rng = np.random.default_rng(9)
    t, h, w = 6, 40, 48
    a, b = np.zeros((1, t, h, w), bool), np.zeros((1, t, h, w), bool)
    for k, (y, x) in enumerate([(0, 0), (5, 30), (20, 44), (33, 10), (36, 40), (15, 15)]):
        a[0, k, y:y + 4, x:x + 4] = rng.random((min(4, h - y), min(4, w - x))) < 0.8
        b[0, k, max(0, y - 1):y + 3, x:x + 5] = True
    per = chamfer_per_frame(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    ref = np.array([[np_chamfer_frame(a[0, k], b[0, k]) for k in range(t)]])
    np.testing.assert_allclose(per, ref, atol=1e-5, equal_nan=True)
    # The colour and shape terms read only the objects: padding the image around them changes
    # nothing (for objects clear of the edge, where the erosion counts the outside as set).
    a = np.zeros((1, t, h, w), bool)
    for k, (y, x) in enumerate([(1, 1), (5, 30), (20, 40), (33, 10), (30, 38), (15, 15)]):
        a[0, k, y:y + 5, x:x + 6] = rng.random((5, 6)) < 0.9
    frames = rng.random((1, t, 3, h, w)).astype(np.float32)
    pad = np.zeros((1, t, 3, h + 20, w + 30), np.float32)
    pad[..., 10:10 + h, 5:5 + w] = frames
    pm = np.zeros((1, t, h + 20, w + 30), bool)
    pm[..., 10:10 + h, 5:5 + w] = a
    valid = torch.ones(1, t, dtype=torch.bool)
    got = consistency_terms(torch.from_numpy(pad), torch.from_numpy(pm), valid)
    want = consistency_terms(torch.from_numpy(frames), torch.from_numpy(a), valid)
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1], want[1])


def np_consistency_terms(frames, masks, valid, ref_area, present):
    """consistency_terms from its definition, loops and all: frames [B, T, C, H, W] in [0, 1]."""
    def lower_median(x):
        return np.sort(x)[(len(x) - 1) // 2] if len(x) else np.nan

    b_, t_, c_, h, w = frames.shape
    out = []
    for b in range(b_):
        area = masks[b].sum((1, 2))
        ok = valid[b] & (area > 0)
        mu = np.zeros((t_, c_))
        for k in range(t_):
            m = masks[b, k]
            pad = np.pad(m, 1, constant_values=True)  # erosion: outside the image counts as set
            core = m.copy()
            for dy in range(3):
                for dx in range(3):
                    core &= pad[dy:dy + h, dx:dx + w]
            use = core if core.any() else m
            pix = frames[b, k][:, use].T
            if len(pix):
                mu[k] = (pix / np.maximum(pix.sum(1, keepdims=True), 1e-3)).mean(0)
        pair = ok[1:] & ok[0]
        d_col = lower_median(np.linalg.norm(mu[1:] - mu[0], axis=1)[pair])
        lr = np.log(np.maximum(area[1:], 1) / max(area[0], 1))
        ra = ref_area[b]
        ref_ok = (ra[1:] > 0) & (ra[0] > 0)
        lr = lr - np.where(ref_ok, np.log(np.maximum(ra[1:], 1) / max(ra[0], 1)), 0.0)
        d_shape = lower_median(np.abs(lr)[pair])
        hc, wc = -(-h // 4), -(-w // 4)
        per = []
        for k in range(1, t_):
            both = masks[b, k] | masks[b, 0]
            cells = np.array([[both[4 * i:4 * i + 4, 4 * j:4 * j + 4].any() for j in range(wc)] for i in range(hc)])
            near = np.zeros_like(cells)
            for i in range(hc):
                for j in range(wc):
                    near[i, j] = cells[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2].any()
            vals = [np.abs(frames[b, k][:, y, x] - frames[b, 0][:, y, x]).mean()
                    for i, y in enumerate(range(2, h, 4)) for j, x in enumerate(range(2, w, 4)) if not near[i, j]]
            per.append(np.mean(vals) if vals else 0.0)
        pp = present[b, 1:] & present[b, 0]
        d_bg = np.mean(np.array(per)[pp]) if pp.any() else np.nan
        out.append((d_col, d_shape, d_bg))
    return [np.array(x) for x in zip(*out)]


@pytest.mark.parametrize("uint8", [False, True])
def test_consistency_terms_match_numpy_on_edges_and_odd_sizes(backend, uint8):
    # Objects touching every edge, a thin one the erosion empties, an empty frame, sizes that are
    # not multiples of the 4x4 background grid, invalid and uncovered frames.
    rng = np.random.default_rng(11)
    b, t, h, w = 2, 6, 23, 30
    masks = np.zeros((b, t, h, w), bool)
    for k, (y, x) in enumerate([(0, 0), (10, 24), (17, 3), (5, 12), (19, 25), (8, 8)]):
        masks[0, k, y:y + 6, x:x + 7] = rng.random((min(6, h - y), min(7, w - x))) < 0.85
        masks[1, k, y:y + 5, x:x + 5] = True
    masks[1, 2] = False
    masks[1, 2, 4, 3:20] = True  # a 1-px line: no core, the chromaticity of the whole mask
    masks[0, 4] = False  # an empty frame
    frames = rng.random((b, t, 3, h, w))
    if uint8:
        u8 = np.round(frames * 255).astype(np.uint8)
        frames, given = u8 / 255.0, torch.from_numpy(u8)
    else:
        given = torch.from_numpy(frames)
    valid = np.ones((b, t), bool)
    valid[0, 3] = False
    present = np.ones((b, t), bool)
    present[1, 5] = False
    ref_area = rng.integers(1, 60, (b, t))
    ref_area[0, 2] = 0
    got = consistency_terms(given, torch.from_numpy(masks), torch.from_numpy(valid), torch.from_numpy(ref_area),
                            torch.from_numpy(present))
    want = np_consistency_terms(frames, masks, valid, ref_area, present)
    for g, ref in zip(got, want):
        np.testing.assert_allclose(g.double().numpy(), ref, rtol=1e-5, atol=1e-6)
