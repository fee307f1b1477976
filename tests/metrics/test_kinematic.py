"""Kinematic residual kernels: closed-form answers, NumPy references, gradients, CUDA == CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic_clips import accelerating, textured_clip

import newtonbench.metrics.functional.kinematic as kinematic_module
from newtonbench.errors import InvalidValueError
from newtonbench.metrics.functional.kinematic import (
    kinematic_residual,
    kinematic_residual_from_flow,
    soft_centroids,
    track_residual,
)

# tiny tensors: one intra-op thread (see conftest.one_torch_thread)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_constant_acceleration_has_near_zero_residual():
    t = torch.arange(8, dtype=torch.float64)
    clip = textured_clip(32, 32, accelerating(t, (0.3, -0.2), (0.4, 0.3), (0.15, 0.1))).float()
    assert kinematic_residual(clip).item() < 1e-3


def test_velocity_kink_gives_the_closed_form_residual():
    # Velocity 0.5 px/frame, then 2.0 from frame 3 on: phi jumps by dv = 1.5 once, so the second
    # difference is dv at two of the T-3 = 5 steps: R = 2 * 1.5^2 / 5 = 0.9 px^2/frame^6.
    t = torch.arange(8, dtype=torch.float64)
    u = torch.where(t < 4, 0.5 * t, 1.5 + 2.0 * (t - 3))
    clip = textured_clip(32, 32, torch.stack([u, 0 * t], 1)).float()
    r = kinematic_residual(clip).item()
    assert r == pytest.approx(0.9, rel=0.1)
    smooth = textured_clip(32, 32, accelerating(t, (0, 0), (0.5, 0), (0.2, 0))).float()
    assert r > 100 * kinematic_residual(smooth).item()


def test_max_side_reports_the_residual_in_full_resolution_pixels():
    # The same kink as above at 64x48 (non-square: u and v scale differently), computed at a long side of 32.
    t = torch.arange(8, dtype=torch.float64)
    u = torch.where(t < 4, 0.5 * t, 1.5 + 2.0 * (t - 3))
    clip = textured_clip(48, 64, torch.stack([u, 0.3 * u], 1)).float()
    expected = 2 * (1.5**2 + 0.45**2) / 5
    assert kinematic_residual(clip).item() == pytest.approx(expected, rel=0.1)
    mask = torch.ones(1, 8, 48, 64)
    assert kinematic_residual(clip, mask, max_side=32).item() == pytest.approx(expected, rel=0.1)
    with pytest.raises(InvalidValueError, match="max_side=4"):
        kinematic_residual(clip, max_side=4)


def _bilinear_np(img: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """img [C, H, W] read at (u, v) [H, W] with border clamping."""
    h, w = img.shape[1:]
    u, v = np.clip(u, 0, w - 1), np.clip(v, 0, h - 1)
    u0, v0 = np.minimum(np.floor(u).astype(int), w - 2), np.minimum(np.floor(v).astype(int), h - 2)
    fu, fv = u - u0, v - v0
    return (
        img[:, v0, u0] * (1 - fu) * (1 - fv)
        + img[:, v0, u0 + 1] * fu * (1 - fv)
        + img[:, v0 + 1, u0] * (1 - fu) * fv
        + img[:, v0 + 1, u0 + 1] * fu * fv
    )


def _numpy_residual(flow: np.ndarray, mask: np.ndarray | None, follow: bool) -> np.ndarray:
    """Plain loops over clips and steps: flow [B, N, 2, H, W] -> [B]."""
    b, n, _, h, w = flow.shape
    vv, uu = np.meshgrid(np.arange(h, dtype=float), np.arange(w, dtype=float), indexing="ij")
    out = []
    for i in range(b):
        num = den = 0.0
        for r in range(n - 2):
            if follow:
                p0 = flow[i, r]
                u1, v1 = uu + p0[0], vv + p0[1]
                p1 = _bilinear_np(flow[i, r + 1], u1, v1)
                u2, v2 = u1 + p1[0], v1 + p1[1]
                p2 = _bilinear_np(flow[i, r + 2], u2, v2)
                inside = (u1 >= 0) & (u1 <= w - 1) & (v1 >= 0) & (v1 <= h - 1)
                inside &= (u2 >= 0) & (u2 <= w - 1) & (v2 >= 0) & (v2 <= h - 1)
                weight = inside.astype(float)
            else:
                p0, p1, p2 = flow[i, r], flow[i, r + 1], flow[i, r + 2]
                weight = np.ones((h, w))
            if mask is not None:
                weight = weight * mask[i, r]
            sq = ((p2 - 2 * p1 + p0) ** 2).sum(0)
            num += (sq * weight).sum()
            den += weight.sum()
        out.append(num / den if den > 0 else np.nan)
    return np.array(out)


@pytest.mark.parametrize("follow", [True, False])
@pytest.mark.parametrize("masked", [True, False])
def test_residual_of_a_flow_matches_numpy_reference(follow, masked):
    rng = np.random.default_rng(7)
    flow = rng.normal(0, 1.5, (2, 5, 2, 6, 7))
    mask = rng.random((2, 6, 6, 7)) if masked else None
    got = kinematic_residual_from_flow(
        torch.from_numpy(flow), None if mask is None else torch.from_numpy(mask), follow=follow
    )
    np.testing.assert_allclose(got.numpy(), _numpy_residual(flow, mask, follow), rtol=1e-10)


def test_masked_residual_without_autograd_equals_the_dense_path(monkeypatch):
    # Without autograd a sparse mask's residual reads trajectories only at the mask's pixels (the scorer's
    # path); with gradients, or for dense masks, it is the per-pixel path. Same values, also with a pixel
    # scale and with trajectories leaving the image. The sparsity threshold is lifted so both paths see
    # the same (dense-ish) mask.
    monkeypatch.setattr(kinematic_module, "_SPARSE_FRACTION", 1.0)
    rng = np.random.default_rng(11)
    flow = torch.from_numpy(rng.normal(0, 2.0, (2, 6, 2, 9, 11)))
    mask = torch.from_numpy(rng.random((2, 7, 9, 11)) * (rng.random((2, 7, 9, 11)) > 0.7))
    for scale in ((1.0, 1.0), (1.7, 0.6)):
        sparse = kinematic_residual_from_flow(flow, mask, pixel_scale=scale)
        dense = kinematic_residual_from_flow(flow.clone().requires_grad_(True), mask, pixel_scale=scale)
        torch.testing.assert_close(sparse, dense.detach(), rtol=1e-12, atol=0)
    ref = _numpy_residual(flow.numpy(), mask.numpy(), follow=True)
    np.testing.assert_allclose(kinematic_residual_from_flow(flow, mask).numpy(), ref, rtol=1e-10)


def test_empty_mask_gives_nan_not_a_fake_zero():
    flow = torch.randn(2, 4, 2, 5, 5, dtype=torch.float64)
    mask = torch.ones(2, 5, 5, 5, dtype=torch.float64)
    mask[1] = 0
    r = kinematic_residual_from_flow(flow, mask)
    assert torch.isfinite(r[0]) and torch.isnan(r[1])


def test_kinematic_residual_gradients_match_finite_differences():
    t = torch.arange(4, dtype=torch.float64)
    frames = textured_clip(8, 8, accelerating(t, (0.1, 0.3), (0.5, -0.3), (0.2, 0.1)), seed=2)[:, :, :1]
    frames = frames.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x: kinematic_residual(x, levels=2, iterations=2, window=3), (frames,), fast_mode=True
    )


def test_track_residual_is_exactly_zero_for_constant_acceleration():
    t = torch.arange(10, dtype=torch.float64)
    track = torch.stack([3 + 2 * t - 0.7 * t**2, -1 + 0.1 * t + 4.9 * t**2], -1).unsqueeze(0)
    assert track_residual(track).item() < 1e-20
    # Positions cubic in t: the third difference is 6 * coefficient, everywhere.
    cubic = torch.stack([0.5 * t**3, 0 * t], -1).unsqueeze(0)
    assert track_residual(cubic).item() == pytest.approx(9.0)


def test_track_residual_with_validity_matches_numpy_reference():
    rng = np.random.default_rng(3)
    c = rng.normal(0, 4, (3, 7, 2))
    valid = rng.random((3, 7)) > 0.2
    valid[2] = False
    got = track_residual(torch.from_numpy(c), torch.from_numpy(valid)).numpy()
    for i in range(3):
        num = den = 0.0
        for t in range(1, 5):  # steps (t-1 .. t+2) inside T = 7 frames
            if i < 2 and valid[i, t - 1 : t + 3].all():
                d = c[i, t + 2] - 3 * c[i, t + 1] + 3 * c[i, t] - c[i, t - 1]
                num, den = num + (d**2).sum(), den + 1
        if den:
            assert got[i] == pytest.approx(num / den, rel=1e-10)
        else:
            assert np.isnan(got[i])


def test_soft_centroids_known_answers():
    prob = torch.zeros(1, 2, 10, 12, dtype=torch.float64)
    prob[0, 0, 2:5, 3:8] = 1.0  # rows 2..4, columns 3..7
    v, u = torch.meshgrid(torch.arange(10.0), torch.arange(12.0), indexing="ij")
    prob[0, 1] = torch.exp(-((u - 6.3) ** 2 + (v - 4.6) ** 2) / 2.0).double()
    c = soft_centroids(prob)
    torch.testing.assert_close(c[0, 0], torch.tensor([5.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(c[0, 1], torch.tensor([6.3, 4.6], dtype=torch.float64), atol=1e-3, rtol=0)
    assert torch.isfinite(soft_centroids(torch.zeros(1, 1, 4, 4))).all()


def test_track_and_centroid_gradients_match_finite_differences():
    prob = torch.rand(1, 5, 6, 7, dtype=torch.float64, requires_grad=True)
    valid = torch.rand(1, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: track_residual(soft_centroids(p), valid), (prob,))


def test_bad_inputs_fail_with_clear_errors():
    with pytest.raises(InvalidValueError, match="T >= 4"):
        kinematic_residual(torch.rand(1, 3, 3, 8, 8))
    with pytest.raises(InvalidValueError, match="mask must be"):
        kinematic_residual(torch.rand(1, 4, 3, 8, 8), mask=torch.ones(1, 4, 8, 9))
    with pytest.raises(InvalidValueError, match="T >= 4"):
        track_residual(torch.zeros(1, 3, 2))
    with pytest.raises(InvalidValueError, match="valid must be"):
        track_residual(torch.zeros(1, 5, 2), torch.ones(1, 4))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_kernels_equal_cpu():
    t = torch.arange(8, dtype=torch.float64)
    clip = textured_clip(32, 48, accelerating(t, (0, 0), (0.5, 0.2), (0.1, 0.2))).float()
    mask = torch.rand(1, 8, 32, 48)
    cpu = kinematic_residual(clip, mask)
    gpu = kinematic_residual(clip.cuda(), mask.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-5, rtol=1e-2)
    track = torch.randn(2, 9, 2)
    torch.testing.assert_close(track_residual(track.cuda()).cpu(), track_residual(track))
    prob = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(soft_centroids(prob.cuda()).cpu(), soft_centroids(prob))
