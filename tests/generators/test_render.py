"""Rendering agrees with the ground truth: (u, v), masks, compositing, TinyRenderer's pixel grid."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from newtonbench.camera import Camera
from newtonbench.generators.dataset_writer import GenerateConfig, build_clip
from newtonbench.generators.renderers import get_renderer
from newtonbench.schema import PRIMITIVES

CASES = [(p, d) for p in PRIMITIVES for d in ("id", "ood")]


@pytest.fixture(scope="module")
def sphere_clips(tmp_path_factory):
    """One sphere clip per primitive and distribution, 128x128, 12 frames at 6 fps (2 s)."""
    out = tmp_path_factory.mktemp("unused")
    renderer = get_renderer("tiny")
    clips = {}
    for p, d in CASES:
        obj = "crate" if p.startswith("ramp") else "sphere"
        cfg = GenerateConfig(out=out, width=128, height=128, fps=6.0, num_frames=12, object_name=obj)
        clips[(p, d)] = build_clip(cfg, p, "test", d, 3, renderer=renderer)
    return clips


@pytest.mark.parametrize("primitive,distribution", CASES)
def test_uv_is_the_projection_and_mask_centroid_within_2px(sphere_clips, primitive, distribution):
    clip = sphere_clips[(primitive, distribution)]
    row = clip.manifest_row
    cam = Camera(row["width"], row["height"], row["fx"], row["fy"], row["cx"], row["cy"], tuple(row["world_to_camera"]))
    xyz = np.c_[clip.trajectory_rows["x"], clip.trajectory_rows["y"], clip.trajectory_rows["z"]]
    uv = np.c_[clip.trajectory_rows["u"], clip.trajectory_rows["v"]]
    assert np.abs(cam.project(xyz) - uv).max() <= 0.5
    # The camera looks perpendicular to the motion plane: its optical axis is world +y.
    np.testing.assert_allclose(cam.extrinsic[2, :3], [0.0, 1.0, 0.0], atol=1e-12)
    assert all(clip.trajectory_rows["visible"]), "the object must stay in view for the whole clip"
    h, w = clip.masks.shape[1:]
    checked = 0
    for i, m in enumerate(clip.masks):
        ys, xs = np.nonzero(m)
        if xs.min() == 0 or ys.min() == 0 or xs.max() == w - 1 or ys.max() == h - 1:
            continue  # cut by the image border: the centroid is not the centre
        assert np.hypot(xs.mean() - uv[i, 0], ys.mean() - uv[i, 1]) <= 2.0, i
        checked += 1
    assert checked >= len(clip.masks) - 1


def test_compositing_equals_drawing_the_whole_scene(sphere_clips):
    clip = sphere_clips[("ramp_up", "id")]
    full = get_renderer("tiny").render(clip.spec, clip.trajectory, clip.scene, clip.camera, full_scene=True)
    np.testing.assert_array_equal(full.masks, clip.masks)
    diff = np.abs(full.frames.astype(int) - clip.frames.astype(int)).max(-1)
    assert (diff > 0).mean() < 1e-3  # identical but for depth ties on the object's silhouette


def test_background_plate_is_the_scene_without_the_object(sphere_clips):
    clip = sphere_clips[("free_fall", "id")]
    outside = clip.masks == 0
    for i in range(len(clip.frames)):
        np.testing.assert_array_equal(clip.frames[i][outside[i]], clip.background[outside[i]])
    assert (clip.frames[0][clip.masks[0] == 1] != clip.background[clip.masks[0] == 1]).any()


def test_tiny_renderer_draws_on_the_opencv_pixel_grid():
    """A sphere on the optical axis must be centred on (cx, cy) exactly: TinyRenderer's own grid is
    half a pixel off (pixel_offset), which the renderer compensates."""
    import pybullet as p

    r = get_renderer("tiny")
    cam = Camera.facing_motion_plane(64, 64, 40.0, 3.0, 0.0, 1.0)
    client = p.connect(p.DIRECT)
    try:
        vis = p.createVisualShape(p.GEOM_SPHERE, radius=0.3, physicsClientId=client)
        p.createMultiBody(0, -1, vis, basePosition=[0, 0, 1], physicsClientId=client)
        du, dv = r.pixel_offset
        proj = dataclasses.replace(cam, cx=cam.cx - du, cy=cam.cy - dv).opengl_projection_matrix()
        _, _, _, _, seg = p.getCameraImage(64, 64, cam.opengl_view_matrix(), proj, renderer=p.ER_TINY_RENDERER,
                                           physicsClientId=client)
    finally:
        p.disconnect(client)
    ys, xs = np.nonzero(np.asarray(seg).reshape(64, 64) >= 0)
    assert xs.mean() == pytest.approx(cam.cx, abs=0.05) and ys.mean() == pytest.approx(cam.cy, abs=0.05)


def test_train_and_test_share_no_objects_or_textures():
    from newtonbench.generators.objects import OBJECTS, pool
    from newtonbench.generators.scenes import BACKDROP_TEXTURES, FLOOR_TEXTURES, OBJECT_TEXTURES

    for use in ("flight", "ramp"):
        assert pool("train", use) and pool("test", use)
        assert not set(pool("train", use)) & set(pool("test", use))
    for fams in (OBJECT_TEXTURES, FLOOR_TEXTURES, BACKDROP_TEXTURES):
        assert not set(fams["train"]) & set(fams["test"])
    from pathlib import Path

    import pybullet_data

    for name in OBJECTS:
        o = OBJECTS.get(name)
        if o.mesh:
            assert (Path(pybullet_data.getDataPath()) / o.mesh).is_file(), o.mesh


def test_egl_renderer_agrees_with_the_camera_where_available(sphere_clips):
    """EGL (GPU, or Mesa's llvmpipe in software) samples pixel centres: no offset to compensate."""
    from newtonbench.errors import RendererUnavailableError

    try:
        egl = get_renderer("egl")
    except RendererUnavailableError as e:
        pytest.skip(str(e))
    clip = sphere_clips[("free_fall", "ood")]
    out = egl.render(clip.spec, clip.trajectory, clip.scene, clip.camera)
    uv = np.c_[clip.trajectory_rows["u"], clip.trajectory_rows["v"]]
    for i, m in enumerate(out.masks):
        ys, xs = np.nonzero(m)
        assert np.hypot(xs.mean() - uv[i, 0], ys.mean() - uv[i, 1]) <= 1.0, i
    # The same objects, on the same pixels, as TinyRenderer.
    assert (out.masks != clip.masks).mean() < 0.002


@pytest.mark.parametrize("primitive", PRIMITIVES)
def test_every_object_stays_in_view_and_spans_a_sixteenth_of_the_width(tmp_path, primitive):
    """Clips drawn from the pools (all objects, ID and OOD) at the default 256 px width: the object
    is in view in every frame, never cut by the border, and its mask's equivalent diameter
    2 sqrt(area / pi) is at least 1/16 of the width (16 px) in the first frame and every other one,
    which mask-based scoring needs. 9 frames at 4 fps span the default clip's 2 s, so the paths,
    and the views that frame them, are the full-length ones."""
    renderer = get_renderer("tiny")
    cfg = GenerateConfig(out=tmp_path, width=256, height=256, fps=4.0, num_frames=9)
    seen = set()
    for split, dist in (("train", "id"), ("test", "id"), ("test", "ood")):
        for i in range(6):
            clip = build_clip(cfg, primitive, split, dist, i, renderer=renderer)
            seen.add(clip.spec.object)
            m = clip.masks.astype(bool)
            assert all(clip.trajectory_rows["visible"]), clip.clip_id
            assert not (m[:, 0].any() or m[:, -1].any() or m[:, :, 0].any() or m[:, :, -1].any()), clip.clip_id
            diameter = 2 * np.sqrt(m.sum(axis=(1, 2)) / np.pi)
            assert diameter.min() >= 256 / 16, (clip.clip_id, clip.spec.object, diameter.round(1).tolist())
    assert len(seen) >= 4


def test_object_size_m_is_the_drawn_size(sphere_clips):
    """A sphere of diameter `object_size_m` at distance D from the camera has a silhouette of radius
    f R / sqrt(D^2 - R^2) pixels: the stored size is the one on screen, whatever the sizing chose."""
    for p in ("free_fall", "horizontal_throw", "parabolic_throw"):
        for d in ("id", "ood"):
            clip = sphere_clips[(p, d)]
            r = clip.spec.object_size_m / 2
            depth = clip.camera.to_camera(clip.trajectory.position[:1])[0, 2]
            expected = 2 * clip.camera.fx * r / np.sqrt(depth**2 - r**2)
            measured = 2 * np.sqrt(clip.masks[0].sum() / np.pi)
            assert measured == pytest.approx(expected, rel=0.05), (p, d)
