"""The shared foundation: camera maths, errors, registry, atomic writes, video I/O, CLI start-up."""

import subprocess
import sys

import numpy as np
import pytest

from newtonbench.atomic import atomic_path, write_json
from newtonbench.camera import Camera
from newtonbench.errors import InvalidValueError, UnknownNameError, check_range
from newtonbench.registry import Registry
from newtonbench.schema import clip_id, parse_clip_id
from newtonbench.video import VideoReadError, find_videos, read_video, write_video


def test_camera_projects_plane_with_known_scale():
    cam = Camera.facing_motion_plane(256, 256, hfov_deg=90.0, distance_m=2.0, look_at_x=1.0, look_at_z=0.5)
    # hfov 90 deg -> fx = 128 px; the look-at point lands on the principal point.
    assert cam.fx == pytest.approx(128.0)
    np.testing.assert_allclose(cam.project(np.array([1.0, 0.0, 0.5])), [127.5, 127.5])
    # +1 m in x is +fx/d px in u; +1 m in z (up) is -fy/d px in v (v points down).
    np.testing.assert_allclose(cam.project(np.array([2.0, 0.0, 0.5])), [127.5 + 64.0, 127.5])
    np.testing.assert_allclose(cam.project(np.array([1.0, 0.0, 1.5])), [127.5, 127.5 - 64.0])
    np.testing.assert_allclose(cam.position, [1.0, -2.0, 0.5])
    assert cam.metres_per_pixel(2.0) == pytest.approx((2.0 / 128.0, 2.0 / 128.0))


def test_opengl_matrices_agree_with_opencv_projection():
    cam = Camera.facing_motion_plane(320, 240, hfov_deg=60.0, distance_m=3.0, look_at_x=0.3, look_at_z=1.0)
    view = np.asarray(cam.opengl_view_matrix()).reshape(4, 4).T  # column-major -> matrix
    proj = np.asarray(cam.opengl_projection_matrix()).reshape(4, 4).T
    rng = np.random.default_rng(0)
    pts = np.c_[rng.uniform(-1, 1, 20), rng.uniform(-0.5, 0.5, 20), rng.uniform(0, 2, 20)]
    clip = (proj @ view @ np.c_[pts, np.ones(20)].T).T
    ndc = clip[:, :3] / clip[:, 3:4]
    u = (ndc[:, 0] + 1) / 2 * cam.width - 0.5  # OpenCV pixel centres at integers
    v = (1 - ndc[:, 1]) / 2 * cam.height - 0.5
    np.testing.assert_allclose(np.c_[u, v], cam.project(pts), atol=1e-9)


def test_unknown_name_suggests_closest():
    reg: Registry[int] = Registry("primitive")
    reg.register("free_fall", 1)
    reg.register("ramp_up", 2)
    with pytest.raises(UnknownNameError) as e:
        reg.get("fre_fall")
    assert str(e.value) == "unknown primitive 'fre_fall'; did you mean 'free_fall'? available: free_fall, ramp_up"


def test_check_range_names_value_and_allowed():
    check_range("fps", 16, 0, low_open=True)
    with pytest.raises(InvalidValueError, match=r"fps=0 is out of range; allowed: > 0"):
        check_range("fps", 0, 0, low_open=True)


def test_clip_id_roundtrip_and_rejects_malformed():
    cid = clip_id("free_fall", "test", "id", 42)
    assert cid == "free_fall-test-id-000042"
    assert parse_clip_id(cid) == {"primitive": "free_fall", "split": "test", "distribution": "id", "index": 42}
    with pytest.raises(InvalidValueError):
        parse_clip_id("free_fall-val-id-1")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    write_json(target, {"a": 1})
    assert target.read_text().strip() == '{\n  "a": 1\n}'


def test_video_roundtrip_is_near_lossless_and_deterministic(tmp_path):
    frames = np.zeros((8, 64, 64, 3), np.uint8)
    for t in range(8):
        frames[t, 20:30, 5 + 4 * t : 15 + 4 * t] = (220, 40, 40)
    write_video(tmp_path / "a.mp4", frames, fps=16)
    write_video(tmp_path / "b.mp4", frames, fps=16)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    video = read_video(tmp_path / "a.mp4")
    assert video.frames.shape == frames.shape
    np.testing.assert_allclose(video.times, np.arange(8) / 16)
    assert video.fps == pytest.approx(16.0)
    assert np.abs(video.frames.astype(int) - frames).mean() < 2.0
    # the scorer's setting (decode and colour conversion in the calling thread): the same pixels
    one = read_video(tmp_path / "a.mp4", threads=1)
    np.testing.assert_array_equal(one.frames, video.frames)
    np.testing.assert_array_equal(one.times, video.times)
    assert find_videos(tmp_path) == {"a": tmp_path / "a.mp4", "b": tmp_path / "b.mp4"}


def _moving_box(tmp_path, fps):
    """12 frames of a box moving right, written as a.mp4 at `fps` and as a folder a/ of PNGs
    (written as BGR, so read back with red and blue swapped): (frames, mp4 path, folder)."""
    import cv2

    frames = np.zeros((12, 32, 32, 3), np.uint8)
    for t in range(12):
        frames[t, 4:12, 2 * t:2 * t + 8] = (200, 60, 30)
    write_video(tmp_path / "a.mp4", frames, fps=fps)
    folder = tmp_path / "a"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}.png"), f)
    return frames, tmp_path / "a.mp4", folder


def test_read_video_until_reads_only_the_frames_before_it_and_each_sees_them(tmp_path, monkeypatch):
    import cv2

    frames, _, folder = _moving_box(tmp_path, fps=8)
    whole = read_video(tmp_path / "a.mp4", threads=1)
    for until, n in ((0.5, 4), (0.51, 5), (100.0, 12), (0.0, 1)):  # frames at k / 8 s
        part = read_video(tmp_path / "a.mp4", threads=1, until=until)
        np.testing.assert_array_equal(part.frames, whole.frames[:n])
        np.testing.assert_array_equal(part.times, whole.times[:n])
        assert read_video(folder, fps_hint=8, until=until).num_frames == n
    # `each` sees the frames read, in runs of about RUN_BYTES, as they are read
    from newtonbench.video import _Frames

    runs = []

    def halve(run):
        runs.append(len(run))
        return run[:, ::2, ::2].copy()

    monkeypatch.setattr(_Frames, "RUN_BYTES", 3 * frames[0].nbytes)  # runs of 3 frames
    halves = read_video(tmp_path / "a.mp4", threads=1, until=0.9, each=halve)  # 8 frames
    np.testing.assert_array_equal(halves.frames, whole.frames[:8, ::2, ::2])
    assert runs == [3, 3, 2]
    np.testing.assert_array_equal(read_video(folder, fps_hint=8, each=halve).frames,
                                  np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames])[:, ::2, ::2])
    assert runs[3:] == [3, 3, 3, 3]
    # frames of different sizes in a folder are an error, whatever `each` makes of them
    cv2.imwrite(str(folder / "999.png"), np.zeros((16, 32, 3), np.uint8))
    with pytest.raises(VideoReadError, match="differ in size"):
        read_video(folder, fps_hint=8, each=lambda run: np.zeros((len(run), 4, 4, 3), np.uint8))


def test_read_video_fps_overrides_the_files_timing(tmp_path):
    # frames made at 16 fps, stored at 10 (a writer's default rate): fps=16 puts frame i at i / 16,
    # and `until` counts on that grid; a frame folder takes it over the benchmark's fps_hint
    _, _, folder = _moving_box(tmp_path, fps=10)
    stored = read_video(tmp_path / "a.mp4", threads=1)
    np.testing.assert_allclose(stored.times, np.arange(12) / 10)
    made = read_video(tmp_path / "a.mp4", threads=1, fps=16)
    np.testing.assert_array_equal(made.frames, stored.frames)
    np.testing.assert_allclose(made.times, np.arange(12) / 16)
    assert made.fps == pytest.approx(16.0)
    part = read_video(tmp_path / "a.mp4", threads=1, fps=16, until=0.5)  # i / 16 < 0.5: 8 frames
    np.testing.assert_array_equal(part.frames, stored.frames[:8])
    np.testing.assert_allclose(read_video(folder, fps_hint=8, fps=16).times, np.arange(12) / 16)


def test_video_rejects_odd_size_and_corrupt_file(tmp_path):
    with pytest.raises(InvalidValueError, match="65x64"):
        write_video(tmp_path / "odd.mp4", np.zeros((2, 64, 65, 3), np.uint8), fps=8)
    assert not (tmp_path / "odd.mp4").exists()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(VideoReadError, match="bad.mp4"):
        read_video(bad)


def test_cli_help_imports_neither_torch_nor_pybullet():
    code = (
        "import sys; from click.testing import CliRunner; from newtonbench.cli import cli; "
        "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output; "
        "assert 'generate' in r.output and 'leaderboard' in r.output; "
        "print(sorted(m for m in ('torch', 'pybullet') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    import os
    import stat

    target = tmp_path / "site.html"
    write_json(target, {})
    mode = stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
