"""Optical flow: known sub-pixel motion, a NumPy reference, gradients, errors, CUDA == CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic_clips import accelerating, textured_clip

import newtonbench.metrics.functional.flow as flow_module
from newtonbench.errors import InvalidValueError, MissingDependencyError, UnknownNameError
from newtonbench.metrics.functional.flow import _box, estimate_flow, lucas_kanade_flow

# tiny tensors: one intra-op thread (see conftest.one_torch_thread)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_accelerating_texture_gives_its_subpixel_flow():
    t = torch.arange(8, dtype=torch.float64)
    shifts = accelerating(t, (0.3, -0.2), (0.4, 0.3), (0.15, 0.1))
    flow = estimate_flow(textured_clip(32, 32, shifts).float())
    assert flow.shape == (1, 7, 2, 32, 32) and flow.dtype == torch.float32
    true = (shifts[1:] - shifts[:-1]).float()  # 0.475 .. 1.375 px/frame in u
    err = (flow[0, :, :, 4:-4, 4:-4] - true[:, :, None, None]).norm(dim=1)
    assert err.mean() < 0.03 and err.max() < 0.15


def test_large_displacements_are_followed_by_the_pyramid():
    t = torch.arange(5, dtype=torch.float64)
    shifts = accelerating(t, (1.0, 0.0), (4.0, -2.0), (0.8, -0.5))  # up to 7.6 px/frame
    flow = estimate_flow(textured_clip(64, 64, shifts).float())
    true = (shifts[1:] - shifts[:-1]).float()
    err = (flow[0, :, :, 10:-10, 10:-10] - true[:, :, None, None]).norm(dim=1)
    assert err.mean() < 0.05 and err.max() < 0.3
    # One level cannot follow 7 px: the pyramid is what does it.
    flat = estimate_flow(textured_clip(64, 64, shifts).float(), levels=1)
    assert (flat[0, :, :, 10:-10, 10:-10] - true[:, :, None, None]).norm(dim=1).mean() > 1.0


def test_identical_frames_have_exactly_zero_flow():
    frames = torch.rand(2, 3, 3, 16, 16)
    frames[:, 1:] = frames[:, :1]
    # Zero up to float32 rounding of the sampling grid.
    assert estimate_flow(frames).abs().max() < 1e-5


def test_max_side_scales_flow_back_to_full_resolution_pixels():
    t = torch.arange(4, dtype=torch.float64)
    shifts = accelerating(t, (0.0, 0.0), (1.0, -0.6), (0.2, 0.1))
    clip = textured_clip(64, 64, shifts, seed=3).float()
    flow = estimate_flow(clip, max_side=32)
    assert flow.shape == (1, 3, 2, 64, 64)
    true = (shifts[1:] - shifts[:-1]).float()
    assert (flow[0, :, :, 12:-12, 12:-12] - true[:, :, None, None]).norm(dim=1).mean() < 0.1


def _numpy_lk_one_step(i1: np.ndarray, i2: np.ndarray, window: int, eps: float) -> np.ndarray:
    """Plain single-level, single-iteration Lucas-Kanade from zero flow: [C, H, W] x2 -> [2, H, W]."""
    mean = 0.5 * (i1 + i2)
    pu = np.pad(mean, ((0, 0), (0, 0), (1, 1)), mode="edge")
    pv = np.pad(mean, ((0, 0), (1, 1), (0, 0)), mode="edge")
    ix, iy = 0.5 * (pu[:, :, 2:] - pu[:, :, :-2]), 0.5 * (pv[:, 2:] - pv[:, :-2])
    it = i2 - i1
    maps = [(ix * ix).sum(0), (ix * iy).sum(0), (iy * iy).sum(0), (ix * it).sum(0), (iy * it).sum(0)]
    r = window // 2
    h, w = i1.shape[1:]
    out = []
    for m in maps:
        p = np.pad(m, r, mode="edge")
        out.append(np.array([[p[y : y + window, x : x + window].mean() for x in range(w)] for y in range(h)]))
    a11, a12, a22, b1, b2 = out
    a11, a22 = a11 + eps, a22 + eps
    det = a11 * a22 - a12 * a12
    return np.stack([(a12 * b2 - a22 * b1) / det, (a12 * b1 - a11 * b2) / det])


def test_single_step_lucas_kanade_matches_numpy_reference():
    rng = np.random.default_rng(0)
    frames = rng.random((1, 2, 2, 9, 11))
    flow = lucas_kanade_flow(torch.from_numpy(frames), levels=1, iterations=1, window=3, eps=1e-3)
    ref = _numpy_lk_one_step(frames[0, 0], frames[0, 1], window=3, eps=1e-3)
    np.testing.assert_allclose(flow[0, 0].numpy(), ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("matmul_side", [0, 32], ids=["window-sums", "matrices"])
def test_flow_gradients_match_finite_differences(monkeypatch, matmul_side):
    # Through whole fused iterations (one autograd node each), with both forms of the window and the
    # differences.
    monkeypatch.setattr(flow_module, "_BOX_MATMUL_SIDE", matmul_side)
    t = torch.arange(3, dtype=torch.float64)
    shifts = accelerating(t, (0.2, 0.1), (0.6, -0.4), (0.1, 0.2))
    frames = textured_clip(8, 8, shifts, seed=1)[:, :, :1].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x: lucas_kanade_flow(x, levels=2, iterations=2, window=3), (frames,), fast_mode=True
    )


@pytest.mark.parametrize("matmul_side", [0, 32], ids=["window-sums", "matrices"])
def test_box_filter_matches_avg_pool_and_its_gradient_is_exact(monkeypatch, matmul_side):
    # The flow's window mean (separable window sums, one autograd node with a hand-written backward; or,
    # on small images, two banded matrix products) against the plain definition: avg_pool2d over the
    # replicate-padded image. Both paths, whatever the image size.
    monkeypatch.setattr(flow_module, "_BOX_MATMUL_SIDE", matmul_side)
    x = torch.rand(2, 5, 9, 13, dtype=torch.float64, requires_grad=True)
    for size in (1, 3, 5, 7, 9):
        r = size // 2
        ref = torch.nn.functional.avg_pool2d(
            torch.nn.functional.pad(x, (r, r, r, r), mode="replicate"), size, 1
        )
        torch.testing.assert_close(_box(x, size), ref, rtol=1e-12, atol=1e-14)
        assert torch.autograd.gradcheck(lambda y, k=size: _box(y, k), (x,))


@pytest.mark.parametrize("matmul_side", [0, 32], ids=["slices", "matrices"])
def test_hand_written_backwards_are_exact(monkeypatch, matmul_side):
    # The iteration's maps and its 2x2 solve are single autograd nodes with hand-written backwards: full
    # (not fast-mode) gradcheck on every input that carries a gradient, for both forms of the maps'
    # central differences (padded slices; difference matrices on small images).
    monkeypatch.setattr(flow_module, "_BOX_MATMUL_SIDE", matmul_side)
    g = torch.Generator().manual_seed(5)
    i1, warped = (torch.rand(2, 3, 5, 6, dtype=torch.float64, generator=g).requires_grad_() for _ in range(2))
    flow = torch.randn(2, 2, 5, 6, dtype=torch.float64, generator=g).requires_grad_()
    inside = (torch.rand(2, 1, 5, 6, generator=g) > 0.3).double()
    assert torch.autograd.gradcheck(
        lambda a, b, f: flow_module._Maps.apply(a, b, f, inside), (i1, warped, flow)
    )
    boxed = torch.rand(2, 5, 5, 6, dtype=torch.float64, generator=g)
    boxed[:, 0] += 1.0
    boxed[:, 2] += 1.0  # a positive definite structure tensor, as the window mean of g g^T + eps I is
    boxed.requires_grad_()
    assert torch.autograd.gradcheck(lambda b, f: flow_module._Solve.apply(b, f, 0.3), (boxed, flow))


def test_long_clips_in_chunks_give_the_same_flow():
    # Pairs run in cache-sized chunks (each with its own pyramid): the result must not depend on the split.
    t = torch.arange(6, dtype=torch.float64)
    clip = textured_clip(24, 20, accelerating(t, (0.0, 0.0), (0.8, -0.5), (0.2, 0.1)), seed=4).float()
    whole = lucas_kanade_flow(clip)
    before = flow_module._CHUNK_VALUES
    try:
        flow_module._CHUNK_VALUES = 2 * 3 * 24 * 20  # two pairs per chunk: chunks of 2, 2 and 1 pairs
        chunked = lucas_kanade_flow(clip)
    finally:
        flow_module._CHUNK_VALUES = before
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)


def test_bad_inputs_fail_with_clear_errors():
    with pytest.raises(InvalidValueError, match=r"\[B, T, C, H, W\]"):
        estimate_flow(torch.rand(2, 3, 8, 8))
    with pytest.raises(InvalidValueError, match="at least 2"):
        estimate_flow(torch.rand(1, 1, 3, 8, 8))
    with pytest.raises(UnknownNameError, match="did you mean 'lk'"):
        estimate_flow(torch.rand(1, 2, 3, 8, 8), method="lkk")
    with pytest.raises(InvalidValueError, match="window=4"):
        estimate_flow(torch.rand(1, 2, 3, 8, 8), window=4)
    with pytest.raises(InvalidValueError, match="needs weights"):
        estimate_flow(torch.rand(1, 2, 3, 8, 8), method="raft")


def test_raft_without_torchvision_names_the_extra(tmp_path):
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError):  # absent, or broken next to a CPU torch (nms operator missing)
        with pytest.raises(MissingDependencyError, match=r"newtonbench\[flow\]"):
            estimate_flow(torch.rand(1, 2, 3, 16, 16), method="raft", weights=tmp_path / "raft.pth")
    else:  # torchvision present: a missing weights file is named
        with pytest.raises(InvalidValueError, match="raft.pth"):
            estimate_flow(torch.rand(1, 2, 3, 16, 16), method="raft", weights=tmp_path / "raft.pth")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_flow_equals_cpu():
    t = torch.arange(6, dtype=torch.float64)
    clip = textured_clip(48, 64, accelerating(t, (0.0, 0.0), (1.0, 0.5), (0.2, 0.1))).float()
    cpu = estimate_flow(clip)
    gpu = estimate_flow(clip.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, atol=2e-3, rtol=1e-3)


def test_small_image_matrix_path_gives_the_same_flow_and_gradient(monkeypatch):
    # Small images take the matrix forms of the box and of the central differences: same flow and same
    # gradient as the slice forms, up to float64 rounding.
    t = torch.arange(5, dtype=torch.float64)
    clip = textured_clip(24, 20, accelerating(t, (0.0, 0.0), (0.8, -0.5), (0.2, 0.1)), seed=6)
    out = {}
    for side in (0, 32):
        monkeypatch.setattr(flow_module, "_BOX_MATMUL_SIDE", side)
        x = clip.clone().requires_grad_(True)
        flow = lucas_kanade_flow(x)
        (flow * torch.linspace(-1, 1, flow.numel(), dtype=flow.dtype).view_as(flow)).sum().backward()
        out[side] = (flow.detach(), x.grad)
    torch.testing.assert_close(out[0][0], out[32][0], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(out[0][1], out[32][1], rtol=1e-9, atol=1e-10)


def test_flow_under_bf16_autocast_stays_float32():
    # bf16 training calls the reward inside autocast: the flow (whose small-image windows are matrix
    # products) must still run, and differentiate, in float32: the same values as without autocast.
    t = torch.arange(5, dtype=torch.float64)
    clip = textured_clip(24, 20, accelerating(t, (0.0, 0.0), (0.8, -0.5), (0.2, 0.1)), seed=7).float()
    ref_x = clip.clone().requires_grad_(True)
    ref = lucas_kanade_flow(ref_x)
    ref.square().sum().backward()
    x = clip.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        flow = lucas_kanade_flow(x)
    flow.square().sum().backward()  # outside autocast, as torch recommends and accelerate does
    assert flow.dtype == torch.float32
    torch.testing.assert_close(flow, ref)
    torch.testing.assert_close(x.grad, ref_x.grad)
