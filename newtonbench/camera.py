"""The pinhole camera shared by the simulator's ground truth, every renderer and the scorer.

Convention (DESIGN.md): OpenCV. Intrinsics fx, fy, cx, cy in pixels, pixel centres at integer
coordinates, u to the right, v down. Extrinsics: a 4x4 world-to-camera matrix; in camera
coordinates x points right, y down, z forward (into the scene).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from newtonbench.errors import InvalidValueError


@dataclass(frozen=True)
class Camera:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    world_to_camera: tuple[float, ...]  # 16 floats, row-major 4x4

    def __post_init__(self):
        if len(self.world_to_camera) != 16:
            raise InvalidValueError(f"world_to_camera has {len(self.world_to_camera)} values; allowed: 16")
        if self.width <= 0 or self.height <= 0 or self.fx <= 0 or self.fy <= 0:
            raise InvalidValueError(f"camera {self.width}x{self.height} fx={self.fx} fy={self.fy}: all must be > 0")

    @property
    def extrinsic(self) -> np.ndarray:
        return np.asarray(self.world_to_camera, dtype=np.float64).reshape(4, 4)

    @property
    def intrinsic(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def position(self) -> np.ndarray:
        """Camera centre in world coordinates."""
        e = self.extrinsic
        return -e[:3, :3].T @ e[:3, 3]

    def to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """[..., 3] world points -> [..., 3] camera-frame points (OpenCV axes)."""
        e = self.extrinsic
        return np.asarray(points_world, dtype=np.float64) @ e[:3, :3].T + e[:3, 3]

    def project(self, points_world: np.ndarray) -> np.ndarray:
        """[..., 3] world points -> [..., 2] pixel coordinates (u, v)."""
        pc = self.to_camera(points_world)
        z = pc[..., 2]
        return np.stack([self.fx * pc[..., 0] / z + self.cx, self.fy * pc[..., 1] / z + self.cy], axis=-1)

    def metres_per_pixel(self, depth_m: float) -> tuple[float, float]:
        """Size of one pixel (x, y) on a fronto-parallel plane at `depth_m` in front of the camera."""
        return depth_m / self.fx, depth_m / self.fy

    # --- OpenGL (PyBullet, EGL) view of the same camera -------------------------------------------

    def opengl_view_matrix(self) -> list[float]:
        """Column-major 4x4 view matrix for pybullet.getCameraImage (OpenGL looks down -z, y up)."""
        flip = np.diag([1.0, -1.0, -1.0, 1.0])
        return list((flip @ self.extrinsic).T.reshape(-1))

    def opengl_projection_matrix(self, near: float = 0.05, far: float = 100.0) -> list[float]:
        """Column-major OpenGL projection whose pixel grid matches (fx, fy, cx, cy) exactly.

        Derived so that NDC x = 2 (u + 0.5) / W - 1 and NDC y = 1 - 2 (v + 0.5) / H, i.e. the
        OpenCV pixel centre u = 0 sits half a pixel inside the image's left edge.
        """
        w, h = self.width, self.height
        p = np.zeros((4, 4))
        p[0, 0] = 2.0 * self.fx / w
        p[0, 2] = 1.0 - (2.0 * self.cx + 1.0) / w
        p[1, 1] = 2.0 * self.fy / h
        p[1, 2] = (2.0 * self.cy + 1.0) / h - 1.0
        p[2, 2] = -(far + near) / (far - near)
        p[2, 3] = -2.0 * far * near / (far - near)
        p[3, 2] = -1.0
        return list(p.T.reshape(-1))

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def facing_motion_plane(
        cls,
        width: int,
        height: int,
        hfov_deg: float,
        distance_m: float,
        look_at_x: float,
        look_at_z: float,
    ) -> Camera:
        """A camera on the -y side of the motion plane y = 0, optical axis along +y (perpendicular to
        the plane), centred on (look_at_x, 0, look_at_z). Square pixels; principal point at the centre.

        Because the optical axis is perpendicular to the plane, a world acceleration in the plane maps
        to an exactly constant image acceleration (scale fx / distance_m).
        """
        fx = (width / 2.0) / np.tan(np.deg2rad(hfov_deg) / 2.0)
        # world x -> cam x, world z -> cam -y, world y -> cam z
        r = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        centre = np.array([look_at_x, -distance_m, look_at_z])
        e = np.eye(4)
        e[:3, :3] = r
        e[:3, 3] = -r @ centre
        return cls(width, height, float(fx), float(fx), (width - 1) / 2.0, (height - 1) / 2.0,
                   tuple(float(v) for v in e.reshape(-1)))
