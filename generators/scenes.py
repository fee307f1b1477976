"""The look of a clip: object colour and texture, floor and backdrop, light, camera.

Everything here is drawn from the clip's own `np.random.Generator`; textures are procedural numpy
arrays (no downloads). Train and test draw textures from disjoint families (DESIGN.md), as they do
objects (objects.py). Nothing here changes the physics: the simulator never sees a Scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from newtonbench.camera import Camera
from newtonbench.errors import InvalidValueError

TEXTURE_SIZE = 64  # object textures
# Floor and backdrop span metres of the view: TinyRenderer samples textures nearest-neighbour, so
# they need about one texel per pixel not to look blocky.
SURFACE_TEXTURE_SIZE = 256
MIN_CAMERA_HEIGHT_M = 0.4
# How much wider than the framed motion the view is, and the narrowest view (half its width, metres).
FRAME_MARGIN = (1.1, 1.3)
HFOV_DEG = (35.0, 55.0)
MIN_VIEW_HALF_WIDTH_M = 0.3

# name -> RGB in [0, 1]; the names go into prompts.
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.10),
    "orange": (0.95, 0.50, 0.08),
    "yellow": (0.95, 0.85, 0.15),
    "green": (0.15, 0.70, 0.20),
    "teal": (0.05, 0.60, 0.60),
    "blue": (0.12, 0.30, 0.90),
    "purple": (0.55, 0.20, 0.75),
    "pink": (0.95, 0.45, 0.70),
    "white": (0.92, 0.92, 0.92),
    "black": (0.10, 0.10, 0.10),
    "brown": (0.50, 0.30, 0.12),
    "grey": (0.50, 0.50, 0.52),
}

# Texture families per split and surface. Train and test share none (disjoint texture sets).
OBJECT_TEXTURES = {"train": ("plain", "checker", "stripes"), "test": ("dots", "marble", "grid")}
FLOOR_TEXTURES = {"train": ("wood", "checker"), "test": ("tiles", "marble")}
BACKDROP_TEXTURES = {"train": ("gradient", "stripes"), "test": ("bricks", "noise")}
# Surface words for prompts.
SURFACE_WORDS = {"wood": "wooden", "checker": "checkered", "tiles": "tiled", "marble": "marble",
                 "plain": "plain", "stripes": "striped", "dots": "polka-dot", "grid": "grid-patterned",
                 "gradient": "plain", "bricks": "brick", "noise": "mottled"}
FLOOR_COLOURS = ((0.55, 0.40, 0.25), (0.70, 0.70, 0.68), (0.35, 0.38, 0.42), (0.60, 0.55, 0.45), (0.40, 0.45, 0.35))
WALL_COLOURS = ((0.80, 0.82, 0.85), (0.75, 0.70, 0.62), (0.55, 0.62, 0.70), (0.70, 0.75, 0.70), (0.85, 0.80, 0.75))


@dataclass(frozen=True)
class Texture:
    family: str
    pixels: np.ndarray  # uint8 [S, S, 3]


@dataclass(frozen=True)
class Scene:
    """The look of one clip plus the draws that place its camera (the placement itself needs the
    nominal trajectory: see `place_camera`)."""

    colour_name: str
    colour: tuple[float, float, float]
    object_texture: Texture
    floor_texture: Texture
    backdrop_texture: Texture
    ramp_texture: Texture
    light_direction: tuple[float, float, float]
    light_ambient: float
    light_diffuse: float
    light_specular: float
    hfov_deg: float
    frame_margin: float  # >= 1: how much wider than the motion the view is
    offset: tuple[float, float]  # in [-1, 1]^2: where the motion sits inside the spare room
    backdrop_distance_m: float  # behind the motion plane (y > 0)


def _value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1]: bilinear upsampling of a random grid (tileable is not needed)."""
    import cv2

    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_LINEAR)


def make_texture(family: str, rng: np.random.Generator, c1, c2, size: int = TEXTURE_SIZE) -> Texture:
    """A procedural texture: a pattern in [0, 1] blending colour c1 (0) into c2 (1)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / size
    if family in ("plain", "gradient"):
        m = 0.15 * _value_noise(rng, size, 4) + (0.25 * y if family == "gradient" else 0.0)
    elif family in ("checker", "tiles"):
        n = int(rng.integers(2, 9))
        m = ((np.floor(x * n) + np.floor(y * n)) % 2).astype(np.float64)
        if family == "tiles":
            m = 0.3 * m + ((x * n) % 1 < 0.08) + ((y * n) % 1 < 0.08)
    elif family == "stripes":
        n = int(rng.integers(3, 10))
        angle = rng.uniform(0, math.pi)
        m = (np.sin(2 * math.pi * n * (x * math.cos(angle) + y * math.sin(angle))) > 0).astype(np.float64)
    elif family == "dots":
        n = int(rng.integers(3, 8))
        r = rng.uniform(0.2, 0.4)
        m = (np.hypot((x * n) % 1 - 0.5, (y * n) % 1 - 0.5) < r).astype(np.float64)
    elif family == "grid":
        n = int(rng.integers(3, 10))
        m = (((x * n) % 1 < 0.15) | ((y * n) % 1 < 0.15)).astype(np.float64)
    elif family == "wood":
        n = rng.uniform(6, 14)
        m = 0.5 + 0.5 * np.sin(2 * math.pi * (n * y + 2.0 * _value_noise(rng, size, 3)))
    elif family == "marble":
        n = rng.uniform(2, 5)
        m = 0.5 + 0.5 * np.sin(2 * math.pi * (n * (x + y) + 3.0 * _value_noise(rng, size, 6)))
    elif family == "bricks":
        rows = int(rng.integers(4, 9))
        cols = rows // 2 + 1
        row = np.floor(y * rows)
        shift = (row % 2) * 0.5
        m = (((y * rows) % 1 < 0.1) | (((x * cols + shift) % 1) < 0.05)).astype(np.float64)
    elif family == "noise":
        m = 0.6 * _value_noise(rng, size, 8) + 0.4 * _value_noise(rng, size, 16)
    else:
        raise InvalidValueError(f"unknown texture family {family!r}")
    m = np.clip(m, 0.0, 1.0)[..., None]
    rgb = (1.0 - m) * np.asarray(c1) + m * np.asarray(c2)
    return Texture(family, np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8))


def _shade(c, f):
    return tuple(float(np.clip(v * f, 0.0, 1.0)) for v in c)


def sample_scene(rng: np.random.Generator, split: str) -> Scene:
    """Draw a clip's look. The number and order of draws never depends on the physics."""
    names = list(COLOURS)
    colour_name = names[int(rng.integers(len(names)))]
    colour = COLOURS[colour_name]
    second = COLOURS[names[int(rng.integers(len(names)))]]
    if second == colour:
        second = _shade(colour, 0.4)
    obj_family = OBJECT_TEXTURES[split][int(rng.integers(len(OBJECT_TEXTURES[split])))]
    object_texture = make_texture(obj_family, rng, colour, second)
    fc = FLOOR_COLOURS[int(rng.integers(len(FLOOR_COLOURS)))]
    floor_family = FLOOR_TEXTURES[split][int(rng.integers(len(FLOOR_TEXTURES[split])))]
    floor_texture = make_texture(floor_family, rng, fc, _shade(fc, rng.uniform(0.5, 0.8)), SURFACE_TEXTURE_SIZE)
    wc = WALL_COLOURS[int(rng.integers(len(WALL_COLOURS)))]
    wall_family = BACKDROP_TEXTURES[split][int(rng.integers(len(BACKDROP_TEXTURES[split])))]
    backdrop_texture = make_texture(wall_family, rng, wc, _shade(wc, rng.uniform(0.6, 0.85)), SURFACE_TEXTURE_SIZE)
    rc = (0.62, 0.45, 0.28)
    ramp_texture = make_texture("wood" if split == "train" else "marble", rng, rc, _shade(rc, 0.7))
    # Light from the camera's side of the plane (y < 0) and from above, so the visible face is lit.
    az = rng.uniform(-0.8, 0.8)
    el = rng.uniform(0.4, 1.2)
    light = (math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el))
    return Scene(
        colour_name=colour_name,
        colour=colour,
        object_texture=object_texture,
        floor_texture=floor_texture,
        backdrop_texture=backdrop_texture,
        ramp_texture=ramp_texture,
        light_direction=tuple(float(v) for v in light),
        light_ambient=float(rng.uniform(0.45, 0.65)),
        light_diffuse=float(rng.uniform(0.35, 0.55)),
        light_specular=float(rng.uniform(0.0, 0.15)),
        hfov_deg=float(rng.uniform(*HFOV_DEG)),
        frame_margin=float(rng.uniform(*FRAME_MARGIN)),
        offset=(float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1))),
        backdrop_distance_m=float(rng.uniform(1.0, 3.0)),
    )


def place_camera(scene: Scene, positions: np.ndarray, object_radius_m: float, width: int, height: int) -> Camera:
    """A camera perpendicular to the motion plane that keeps the whole path in view.

    `positions` is the nominal-gravity trajectory [T, 3]; the view covers its x-z bounding box grown
    by the object's radius, times `frame_margin`, and the path sits inside the spare room at
    `offset`. The distance follows from the field of view.
    """
    lo = positions[:, [0, 2]].min(0) - object_radius_m
    hi = positions[:, [0, 2]].max(0) + object_radius_m
    size = hi - lo
    aspect = width / height
    half_w = max(size[0] / 2, size[1] / 2 * aspect, MIN_VIEW_HALF_WIDTH_M) * scene.frame_margin
    half_h = half_w / aspect
    tan_half = math.tan(math.radians(scene.hfov_deg) / 2)
    # The object's near side is closer to the camera than the plane; step back by its radius.
    distance = half_w / tan_half + object_radius_m
    slack = np.array([half_w - size[0] / 2, half_h - size[1] / 2]) - object_radius_m * 0.5
    slack = np.maximum(slack, 0.0)
    centre = (lo + hi) / 2 + 0.8 * slack * np.asarray(scene.offset)
    # Keep the camera above the floor (a camera below z = 0 sees the floor's underside), as far as
    # the path still fits in the view.
    centre[1] = max(centre[1], min(MIN_CAMERA_HEIGHT_M, (lo[1] + hi[1]) / 2 + slack[1]))
    return Camera.facing_motion_plane(width, height, scene.hfov_deg, distance, float(centre[0]), float(centre[1]))


def describe(scene: Scene, noun: str, size_m: float, phrase: str, surface: str) -> str:
    """The clip's prompt, e.g. "A small red cube falls from a height of 1.2 m onto a wooden floor."."""
    # Sizes run from 0.1 m (short paths) to about 1.5 m (long OOD throws, long slides): sampling.py.
    size_word = "small" if size_m < 0.3 else ("large" if size_m > 0.6 else "medium-sized")
    pattern = "" if scene.object_texture.family == "plain" else f" {SURFACE_WORDS[scene.object_texture.family]}"
    floor = SURFACE_WORDS[scene.floor_texture.family]
    wall = SURFACE_WORDS[scene.backdrop_texture.family]
    where = f"onto a {floor} floor" if surface == "floor" else f"in front of a {wall} wall"
    return f"A {size_word} {scene.colour_name}{pattern} {noun} {phrase} {where}."
