"""Render a simulated clip with PyBullet's own renderers (TinyRenderer on CPU, EGL on GPU).

Kubric's split (STYLE.md): the simulator gives the ground truth, the renderer only draws it, and both
use the same `newtonbench.camera.Camera`, passed to PyBullet as OpenGL matrices built from the OpenCV
intrinsics, so that the stored (u, v) and the pixels agree.

Speed: the static scene (floor, backdrop, ramp) is drawn once, with its depth buffer: that is the
clean background plate. Each frame then draws the object alone, only in the small window of the
image that can hold it (the same camera with its principal point moved), and composites it over the
plate by depth. That gives the same picture as drawing the whole scene (shadows are off, nothing is
transparent, and the z-test is the one the renderer applies itself; tests/generators/test_render.py
compares the two) at a fraction of the cost: TinyRenderer's time goes into pixels, and the floor
and wall cover them all. The object-only pass also yields the segmentation mask, which the depth
test trims to the visible pixels.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from newtonbench.camera import Camera
from newtonbench.generators.objects import create_shapes, get_object
from newtonbench.generators.primitives.base import Spec, Trajectory
from newtonbench.generators.scenes import Scene, Texture


@dataclass(frozen=True)
class Rendered:
    frames: np.ndarray  # uint8 [T, H, W, 3]
    masks: np.ndarray  # uint8 [T, H, W], 1 = visible object pixel
    background: np.ndarray  # uint8 [H, W, 3], the scene without the object


class PyBulletRenderer:
    name = "tiny"
    # Where this renderer draws a point, minus where the OpenCV camera projects it (pixels).
    # TinyRenderer samples pixel corners, not centres, and flips rows: measured on spheres, it
    # draws everything (+0.5, -0.5) px off (tests/generators/test_render.py), so the projection it
    # is given is shifted back by that much. OpenGL (EGL) samples pixel centres: no offset.
    pixel_offset = (0.5, -0.5)

    def _connect(self):
        import pybullet as p

        return p, p.connect(p.DIRECT)

    def _flag(self, p) -> int:
        return p.ER_TINY_RENDERER

    def render(self, spec: Spec, traj: Trajectory, scene: Scene, camera: Camera, full_scene: bool = False) -> Rendered:
        """Draw every frame of `traj`. `full_scene=True` draws the whole scene per frame instead of
        compositing (slow; used by the tests to show compositing changes nothing)."""
        p, client = self._connect()
        try:
            with tempfile.TemporaryDirectory(prefix="newtonbench-tex-") as tmp:
                return self._render(p, client, Path(tmp), spec, traj, scene, camera, full_scene)
        finally:
            self._release(p, client)

    def _release(self, p, client: int) -> None:
        p.disconnect(client)

    def _render(self, p, client, tmp, spec, traj, scene, camera, full_scene) -> Rendered:
        w, h = camera.width, camera.height
        du, dv = self.pixel_offset
        view = camera.opengl_view_matrix()
        proj = dataclasses.replace(camera, cx=camera.cx - du, cy=camera.cy - dv).opengl_projection_matrix()
        light = {"lightDirection": list(scene.light_direction), "lightColor": [1.0, 1.0, 1.0], "lightDistance": 10.0,
                     "shadow": 0, "lightAmbientCoeff": scene.light_ambient, "lightDiffuseCoeff": scene.light_diffuse,
                     "lightSpecularCoeff": scene.light_specular}
        flag = self._flag(p)

        def shoot(x0=0, y0=0, ww=w, hh=h):
            """Draw the window [x0, x0 + ww) x [y0, y0 + hh) of the camera's image: the same pixel grid,
            with the principal point moved, so a window is exactly that part of the full picture."""
            pr = proj if (x0, y0, ww, hh) == (0, 0, w, h) else dataclasses.replace(
                camera, width=ww, height=hh, cx=camera.cx - du - x0, cy=camera.cy - dv - y0).opengl_projection_matrix()
            _, _, rgba, depth, seg = p.getCameraImage(ww, hh, view, pr, renderer=flag, physicsClientId=client, **light)
            return (np.asarray(rgba, dtype=np.uint8).reshape(hh, ww, 4)[..., :3],
                    np.asarray(depth, dtype=np.float32).reshape(hh, ww), np.asarray(seg).reshape(hh, ww))

        def texture(t: Texture) -> int:
            import cv2

            f = tmp / f"{len(list(tmp.iterdir()))}.png"
            cv2.imwrite(str(f), cv2.cvtColor(t.pixels, cv2.COLOR_RGB2BGR))
            return p.loadTexture(str(f), physicsClientId=client)

        def box(half, pos, orn, tex: Texture) -> int:
            vis = p.createVisualShape(p.GEOM_BOX, halfExtents=list(half), rgbaColor=[1, 1, 1, 1], physicsClientId=client)
            b = p.createMultiBody(0.0, -1, vis, basePosition=list(pos), baseOrientation=list(orn), physicsClientId=client)
            p.changeVisualShape(b, -1, textureUniqueId=texture(tex), physicsClientId=client)
            return b

        # Static scene, sized to fill the view at the backdrop's depth.
        cam_pos = camera.position
        depth_back = -cam_pos[1] + scene.backdrop_distance_m
        half_w = 1.3 * depth_back * (camera.width / 2) / camera.fx
        half_h = 1.3 * depth_back * (camera.height / 2) / camera.fy
        cx = float(cam_pos[0])
        top = float(cam_pos[2] + half_h)
        static = [
            box((half_w, (depth_back + 1.0) / 2, 0.01), (cx, (scene.backdrop_distance_m + cam_pos[1] - 1.0) / 2, -0.01),
                (0, 0, 0, 1), scene.floor_texture),
            box((half_w, 0.01, max(top, 0.5) / 2), (cx, scene.backdrop_distance_m + 0.01, max(top, 0.5) / 2),
                (0, 0, 0, 1), scene.backdrop_texture),
        ]
        if traj.ramp is not None:
            r = traj.ramp
            static.append(box(r.half_extents, r.centre, r.orientation, scene.ramp_texture))
        background, plate_depth, _ = shoot()

        obj = get_object(spec.object)
        rgba = [1.0, 1.0, 1.0, 1.0] if obj.textured else [*scene.colour, 1.0]
        _, vis = create_shapes(client, obj, spec.object_size_m, collision=False, visual=True, rgba=rgba)
        body = p.createMultiBody(0.0, -1, vis, basePosition=list(traj.position[0]), physicsClientId=client)
        if obj.textured:
            p.changeVisualShape(body, -1, textureUniqueId=texture(scene.object_texture), physicsClientId=client)
        if not full_scene:
            for b in static:
                p.removeBody(b, physicsClientId=client)

        n = traj.num_frames
        frames = np.empty((n, h, w, 3), dtype=np.uint8)
        masks = np.zeros((n, h, w), dtype=np.uint8)
        windows = _windows(camera, traj.position, radius(spec))
        for i in range(n):
            p.resetBasePositionAndOrientation(body, list(traj.position[i]), list(traj.orientation[i]),
                                              physicsClientId=client)
            if full_scene:
                rgb, _, seg = shoot()
                frames[i] = rgb
                masks[i] = seg == body
                continue
            frames[i] = background
            x0, y0, x1, y1 = windows[i]
            if x1 <= x0 or y1 <= y0:
                continue  # out of view
            # Only the object's window is drawn; its pixels win where they are nearer than the plate
            # (the renderer's own z-test, on the same depth values).
            rgb, depth, seg = shoot(x0, y0, x1 - x0, y1 - y0)
            m = (seg == body) & (depth < plate_depth[y0:y1, x0:x1])
            frames[i, y0:y1, x0:x1][m] = rgb[m]
            masks[i, y0:y1, x0:x1] = m
        return Rendered(frames=frames, masks=masks, background=background)


def _windows(camera: Camera, positions: np.ndarray, reach: float) -> np.ndarray:
    """Per frame, the pixel window [x0, y0, x1, y1) that holds everything within `reach` metres of
    the object's centre (plus 2 px), clipped to the image; empty when it is out of view."""
    pc = camera.to_camera(positions)
    uv = camera.project(positions)
    near = np.maximum(pc[:, 2] - reach, 1e-3)
    r_px = np.maximum(camera.fx, camera.fy) * reach / near + 2.0
    lo = np.floor(uv - r_px[:, None]).astype(int)
    hi = np.ceil(uv + r_px[:, None]).astype(int) + 1
    lo = np.clip(lo, 0, [camera.width, camera.height])
    hi = np.clip(hi, 0, [camera.width, camera.height])
    # An object reaching behind the camera's near side: draw the whole picture.
    full = pc[:, 2] - reach <= 0.05
    lo[full], hi[full] = 0, [camera.width, camera.height]
    return np.concatenate([lo, hi], axis=1)


def radius(spec: Spec) -> float:
    """Half the object's bounding-box diagonal: a bound on how far it reaches from its centre."""
    from newtonbench.generators.objects import body_extents

    return float(np.linalg.norm(body_extents(get_object(spec.object), spec.object_size_m)) / 2)


