"""The dataset writer: layout, worker-count independence, resume after a kill, validate, the reader."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from newtonbench.cli import cli
from newtonbench.dataset import open_dataset
from newtonbench.errors import DatasetError
from newtonbench.generators.dataset_writer import GenerateConfig, generate
from newtonbench.generators.validate import validate
from newtonbench.schema import MANIFEST_SCHEMA, TRAJECTORY_SCHEMA
from newtonbench.video import read_video

SMALL = {"num_clips": 1, "width": 64, "height": 64, "fps": 8.0, "num_frames": 12, "seed": 3}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "DATA"
    return generate(GenerateConfig(out=out, workers=1, **SMALL), progress=False)


@pytest.fixture(scope="module")
def data_two_workers(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench2") / "DATA"
    return generate(GenerateConfig(out=out, workers=2, **SMALL), progress=False)


def _same_dataset(a: Path, b: Path) -> None:
    da, db = open_dataset(a), open_dataset(b)
    pd.testing.assert_frame_equal(da.manifest, db.manifest)
    pd.testing.assert_frame_equal(da.trajectories, db.trajectories)
    assert (a / "manifest.parquet").read_bytes() == (b / "manifest.parquet").read_bytes()
    assert (a / "trajectories.parquet").read_bytes() == (b / "trajectories.parquet").read_bytes()
    assert (a / "dataset.json").read_text() == (b / "dataset.json").read_text()
    for cid in da.manifest["clip_id"]:
        np.testing.assert_array_equal(read_video(da.video_path(cid)).frames, read_video(db.video_path(cid)).frames)
        np.testing.assert_array_equal(da.masks(cid), db.masks(cid))
        np.testing.assert_array_equal(da.first_frame(cid), db.first_frame(cid))
        np.testing.assert_array_equal(da.background(cid), db.background(cid))


def test_layout_and_schema(data):
    ds = open_dataset(data)
    # 5 primitives x (train-id, test-id, test-ood): the test split holds ID and OOD for every primitive.
    assert len(ds) == 15
    groups = set(map(tuple, ds.manifest[["primitive", "split", "distribution"]].to_numpy()))
    assert all((p, "test", d) in groups for p in ds.manifest["primitive"].unique() for d in ("id", "ood"))
    assert not (ds.manifest["split"].eq("train") & ds.manifest["distribution"].eq("ood")).any()
    assert set(MANIFEST_SCHEMA.names) <= set(ds.manifest.columns)
    assert set(TRAJECTORY_SCHEMA.names) <= set(ds.trajectories.columns)
    assert len(ds.trajectories) == 15 * 12
    cid = "ramp_up-test-ood-000000"
    row = ds.clip(cid)
    assert row["friction"] > 0.44 and row["height_m"] is None or np.isnan(row["height_m"])
    assert len(row["world_to_camera"]) == 16
    assert ds.video_path(cid) == data / "videos" / f"{cid}.mp4"
    assert ds.first_frame(cid).shape == (64, 64, 3) and ds.background(cid).shape == (64, 64, 3)
    m = ds.masks(cid)
    assert m.shape == (12, 64, 64) and m.dtype == np.uint8 and set(np.unique(m)) <= {0, 1}
    assert ds.camera(cid).fx == row["fx"]
    assert list(ds.trajectory(cid)["frame"]) == list(range(12))
    arrays = ds.trajectory_arrays(cid, ("frame", "t", "v"))  # the scorer's read: the same rows, read-only
    for c, a in arrays.items():
        np.testing.assert_array_equal(a, ds.trajectory(cid)[c].to_numpy())
        assert not a.flags.writeable
    with pytest.raises(DatasetError, match="not in"):
        ds.trajectory_arrays("no-such-clip", ("t",))
    assert ds.mask_path(cid) == data / "masks" / f"{cid}.npz"
    assert len(ds.select(primitives="free_fall", splits=["test"])) == 2
    assert len(ds.manifest_sha256) == 64
    # Decoded video frames stay close to the rendered first frame (crf 10; the RGB <-> YUV 4:2:0
    # round trip alone shifts levels by about 1-2).
    video = read_video(ds.video_path(cid)).frames
    assert np.abs(video[0].astype(int) - ds.first_frame(cid).astype(int)).mean() < 3.0
    assert all(isinstance(p, str) and len(p) > 20 for p in ds.manifest["prompt"])


def test_compression_does_not_move_the_object(tmp_path):
    """At the default 256x256, the object's centroid segmented against the clean plate moves by well
    under a pixel through H.264 (crf 10). What it does move comes from 4:2:0 chroma subsampling,
    which bleeds a saturated colour about a pixel over the object's edge (measured up to 0.5 px)."""
    import cv2

    from newtonbench.generators.dataset_writer import build_clip
    from newtonbench.video import write_video

    shifts = []
    for primitive, obj in (("parabolic_throw", "sphere"), ("ramp_down", "block"), ("free_fall", "duck")):
        cfg = GenerateConfig(out=tmp_path, fps=4.0, num_frames=8, object_name=obj)
        clip = build_clip(cfg, primitive, "train", "id", 0)
        write_video(tmp_path / "v.mp4", clip.frames, fps=4.0)
        decoded = read_video(tmp_path / "v.mp4").frames.astype(int)
        bg = clip.background.astype(int)
        for i in range(len(clip.frames)):
            # Look only near the object: H.264 also rings along the backdrop's own sharp edges.
            near = cv2.dilate(clip.masks[i], np.ones((9, 9), np.uint8)).astype(bool)
            before = (np.abs(clip.frames[i].astype(int) - bg).max(-1) > 30) & near
            after = (np.abs(decoded[i] - bg).max(-1) > 30) & near
            if before.sum() < 0.7 * clip.masks[i].sum():
                continue  # object too close to the background's colour for a threshold to segment it
            shifts.append(np.hypot(*(np.argwhere(before).mean(0) - np.argwhere(after).mean(0))))
    assert len(shifts) >= 16
    assert max(shifts) < 0.75 and np.mean(shifts) < 0.4, shifts


def test_same_output_for_any_worker_count(data, data_two_workers):
    _same_dataset(data, data_two_workers)


def test_killed_run_resumes_to_the_same_dataset(data, tmp_path):
    out = tmp_path / "DATA"
    cmd = [sys.executable, "-m", "newtonbench", "generate", "--out", str(out), "--no-progress",
           "--num-clips", "1", "--width", "64", "--height", "64", "--fps", "8", "--num-frames", "12", "--seed", "3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    shards = out / ".shards"
    deadline = time.time() + 60
    while time.time() < deadline and (not shards.is_dir() or len(list(shards.glob("*.json"))) < 2):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(shards.glob("*.json")))
    assert 2 <= done < 15, f"the kill came too late ({done} clips finished)"
    assert not (out / "manifest.parquet").exists()
    with pytest.raises(DatasetError, match="missing"):
        open_dataset(out)
    generate(GenerateConfig(out=out, **SMALL), progress=False)
    _same_dataset(data, out)


def test_rerun_skips_finished_clips(data):
    before = {p: p.stat().st_mtime_ns for p in (data / "videos").iterdir()}
    generate(GenerateConfig(out=data, **SMALL), progress=False)
    assert {p: p.stat().st_mtime_ns for p in (data / "videos").iterdir()} == before


def test_validate_passes_and_cli_prints_a_table(data):
    report = validate(data)
    assert report.ok, report.table()
    assert all(np.isfinite(c.accel_rel_err) and c.accel_rel_err < 0.01 for c in report.clips)
    res = CliRunner().invoke(cli, ["validate", str(data), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "ramp_up/test/ood" in res.output and "PASSED: 15/15" in res.output


def test_validate_fails_on_wrong_physics_and_missing_files(data, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(data, bad)
    traj = pd.read_parquet(bad / "trajectories.parquet")
    sel = traj["clip_id"] == "free_fall-test-id-000000"
    traj.loc[sel, "z"] = traj.loc[sel, "z"] - 0.03 * traj.loc[sel, "t"] ** 2  # a = -g - 0.06: 0.6 % off
    traj.loc[traj["clip_id"] == "ramp_down-train-id-000000", "z"] *= 1.05
    for cid in ("free_fall-test-id-000000", "ramp_down-train-id-000000"):  # keep (u, v) consistent
        rows = traj["clip_id"] == cid
        traj.loc[rows, ["u", "v"]] = open_dataset(data).camera(cid).project(traj.loc[rows, ["x", "y", "z"]].to_numpy())
    traj.to_parquet(bad / "trajectories.parquet")
    man = pd.read_parquet(bad / "manifest.parquet")
    man.loc[man["clip_id"] == "ramp_up-train-id-000000", "friction"] += 0.01  # the law no longer fits
    man.to_parquet(bad / "manifest.parquet")
    (bad / "videos" / "ramp_up-test-id-000000.mp4").write_bytes(b"not a video")
    (bad / "masks" / "free_fall-train-id-000000.npz").unlink()
    report = validate(bad)
    failing = {c.clip_id for c in report.clips if not c.ok}
    assert failing == {"ramp_down-train-id-000000", "ramp_up-test-id-000000", "free_fall-train-id-000000",
                       "ramp_up-train-id-000000"}
    res = CliRunner().invoke(cli, ["validate", str(bad), "--no-progress"])
    assert res.exit_code == 1 and "FAIL" in res.output


def test_gravity_override_keeps_the_scene(data, tmp_path):
    out = generate(GenerateConfig(out=tmp_path / "moon", primitives=("parabolic_throw", "ramp_down"), gravity=4.0,
                                  **SMALL), progress=False)
    real, moon = open_dataset(data), open_dataset(out)
    assert moon.info["gravity"] == 4.0 and set(moon.manifest["gravity"]) == {4.0}
    for cid in moon.manifest["clip_id"]:
        a, b = real.clip(cid), moon.clip(cid)
        for k in ("object", "object_size_m", "world_to_camera", "fx", "ramp_angle_deg", "friction", "speed_mps",
                  "colour", "object_texture", "floor_texture"):
            assert a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]), k
        np.testing.assert_array_equal(real.first_frame(cid), moon.first_frame(cid))
        np.testing.assert_array_equal(real.background(cid), moon.background(cid))
    assert moon.clip("parabolic_throw-test-id-000000")["accel_z"] == -4.0
    assert validate(out).ok


@pytest.mark.parametrize(
    "args,message",
    [
        (["--primitive", "fre_fall"], "did you mean 'free_fall'"),
        (["--num-clips", "0"], "0 is not in the range"),
        (["--fps", "0"], "--fps"),
        (["--width", "0"], "--width"),
        (["--width", "63"], "63x256"),
        (["--split", "train", "--distribution", "ood"], "only in the test split"),
        (["--object", "dck"], "did you mean 'duck'"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "never"
    res = CliRunner().invoke(cli, ["generate", "--out", str(out), *args])
    assert res.exit_code != 0 and message in res.output, res.output
    assert "Traceback" not in res.output
    assert not out.exists()


def test_output_path_that_is_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    res = CliRunner().invoke(cli, ["generate", "--out", str(f)])
    assert res.exit_code != 0 and "is a file" in res.output
    assert f.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_output_path_not_writable(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    res = CliRunner().invoke(cli, ["generate", "--out", str(ro / "DATA")])
    assert res.exit_code != 0 and "not writable" in res.output


def test_unavailable_egl_is_a_clear_error(tmp_path, monkeypatch):
    from newtonbench.generators.renderers import egl

    # Simulate a pybullet build without the plugin: the check must fail before anything is written.
    monkeypatch.setattr(egl, "_plugin_file", lambda: None)
    res = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path / "D"), "--renderer", "egl"])
    assert res.exit_code != 0 and "renderer 'egl' is not available" in res.output
    assert not (tmp_path / "D").exists()


def test_open_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match="not a NewtonBench dataset"):
        open_dataset(tmp_path)


def test_preset_lays_out_newtonbench_60k(tmp_path):
    cfg = GenerateConfig(out=tmp_path, preset="newtonbench-60k")
    groups = {(p, s, d): n for p, s, d, n in cfg.groups()}
    assert sum(groups.values()) == 60_000
    for p in ("free_fall", "horizontal_throw", "parabolic_throw", "ramp_down", "ramp_up"):
        assert groups[(p, "train", "id")] == 10_000
        assert groups[(p, "test", "id")] + groups[(p, "test", "ood")] == 2_000
        assert (p, "train", "ood") not in groups


def test_train_and_test_clips_use_disjoint_objects_and_textures(data):
    man = open_dataset(data).manifest
    train, test = man[man["split"] == "train"], man[man["split"] == "test"]
    for col in ("object", "object_texture", "floor_texture", "backdrop_texture"):
        assert not set(train[col]) & set(test[col]), col


def test_rerun_reuses_clips_of_the_same_configuration_only(tmp_path):
    one = {**SMALL, "splits": ("test",), "distributions": ("id",)}
    generate(GenerateConfig(out=tmp_path, primitives=("free_fall",), **one), progress=False)
    video = tmp_path / "videos" / "free_fall-test-id-000000.mp4"
    stamp = video.stat().st_mtime_ns
    generate(GenerateConfig(out=tmp_path, primitives=("free_fall", "ramp_up"), **one), progress=False)
    assert video.stat().st_mtime_ns == stamp  # another primitive added: free_fall is kept
    assert list(open_dataset(tmp_path).manifest["clip_id"]) == ["free_fall-test-id-000000", "ramp_up-test-id-000000"]
    generate(GenerateConfig(out=tmp_path, primitives=("free_fall",), **{**one, "seed": 4}), progress=False)
    assert video.stat().st_mtime_ns != stamp  # another seed: redone
    assert list(open_dataset(tmp_path).manifest["seed"]) == [4]


def test_masks_are_bit_packed_in_their_box_and_formats_1_2_still_read(data, tmp_path):
    import io
    import json
    import shutil

    from newtonbench.dataset import decode_masks, encode_masks, expand_masks

    # a box whose width is not a multiple of 8, and every pattern of a byte inside it
    rng = np.random.default_rng(0)
    m = np.zeros((3, 9, 20), np.uint8)
    m[:, 2:7, 4:17] = rng.random((3, 5, 13)) < 0.5
    m[0, 2, 4] = m[2, 6, 16] = 1  # the box's corners are set
    with np.load(io.BytesIO(encode_masks(m))) as z:
        assert z["packed"].shape == (3, 5, 2)
        assert list(z["box"]) == [2, 7, 4, 17] and list(z["shape"]) == [3, 9, 20]
        crop, box, shape = decode_masks(z)
    assert box == (2, 7, 4, 17) and shape == (3, 9, 20)
    np.testing.assert_array_equal(crop, m[:, 2:7, 4:17])
    np.testing.assert_array_equal(expand_masks(crop, box, shape), m)
    # no frame shows the object: an empty box, and all-zero masks back
    with np.load(io.BytesIO(encode_masks(np.zeros((2, 4, 5), np.uint8)))) as z:
        crop, box, shape = decode_masks(z)
    assert box == (0, 0, 0, 0) and crop.shape == (2, 0, 0)
    np.testing.assert_array_equal(expand_masks(crop, box, shape), np.zeros((2, 4, 5), np.uint8))
    # format 2 (the whole frame bit-packed, "width"): the same crop and box, empty or not
    for masks in (m, np.zeros((2, 4, 5), np.uint8)):
        buf = io.BytesIO()
        np.savez_compressed(buf, packed=np.packbits(masks, axis=-1), width=np.int64(masks.shape[-1]))
        with np.load(io.BytesIO(buf.getvalue())) as z:
            crop, box, shape = decode_masks(z)
        assert shape == masks.shape
        np.testing.assert_array_equal(expand_masks(crop, box, shape), masks)
    assert box == (0, 0, 0, 0)

    cid = "free_fall-test-id-000000"
    ds = open_dataset(data)
    want = ds.masks(cid)
    crop, (y0, y1, x0, x1) = ds.mask_box(cid)
    assert want.any() and not want[:, :y0].any() and not want[:, y1:].any()
    assert want[:, y0].any() and want[:, y1 - 1].any() and want[:, :, x0].any() and want[:, :, x1 - 1].any()
    np.testing.assert_array_equal(crop, want[:, y0:y1, x0:x1])
    # format-2 (bit-packed over the whole frame) and format-1 (one byte per pixel, key "masks")
    # datasets read back the same masks, and the same box
    old = tmp_path / "old"
    shutil.copytree(data, old)
    info = json.loads((old / "dataset.json").read_text())
    assert info["format_version"] == "3"
    for version, arrays in (("2", {"packed": np.packbits(want, axis=-1), "width": np.int64(want.shape[-1])}),
                            ("1", {"masks": want})):
        info["format_version"] = version
        (old / "dataset.json").write_text(json.dumps(info))
        np.savez_compressed(old / "masks" / f"{cid}.npz", **arrays)
        np.testing.assert_array_equal(open_dataset(old).masks(cid), want)
        old_crop, old_box = open_dataset(old).mask_box(cid)
        assert old_box == (y0, y1, x0, x1)
        np.testing.assert_array_equal(old_crop, crop)
    info["format_version"] = "9"
    (old / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match="format_version '9'; allowed: 1, 2, 3"):
        open_dataset(old)
