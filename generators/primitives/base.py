"""What every motion primitive shares: the frozen Spec, the Trajectory, parameter ranges, the registry.

A primitive is one module in this package exposing a `Primitive` registered by name. It declares
its Spec (SI units), its ID and OOD parameter ranges, how to draw a Spec from a Generator, its
analytic acceleration, and `simulate(spec) -> Trajectory` (PyBullet, never pixels). The contract
tests iterate `PRIMITIVES`, so adding a primitive touches only its own file (and its docs row).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import ClassVar

import numpy as np

from newtonbench.errors import InvalidValueError, check_range
from newtonbench.registry import Registry
from newtonbench.schema import GRAVITY


@dataclass(frozen=True)
class Range:
    low: float
    high: float

    def __post_init__(self):
        if not self.low <= self.high:
            raise InvalidValueError(f"range [{self.low}, {self.high}] is empty")

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def __str__(self) -> str:
        return f"{self.low:g}–{self.high:g}"


@dataclass(frozen=True, kw_only=True)
class Spec:
    """Everything `simulate` needs, SI units. Subclasses add the primitive's own parameters."""

    seed: int
    object: str
    object_size_m: float
    mass_kg: float
    gravity: float = GRAVITY
    fps: float = 16.0
    num_frames: int = 32
    sim_hz: float = 240.0  # minimum physics rate; the step is 1 / (fps * ceil(sim_hz / fps))

    def __post_init__(self):
        from newtonbench.generators.objects import check_object

        check_object(self.object)
        check_range("object_size_m", self.object_size_m, 0.0, 5.0, low_open=True)
        check_range("mass_kg", self.mass_kg, 0.0, None, low_open=True)
        check_range("gravity", self.gravity, 0.0, 100.0, low_open=True)
        check_range("fps", self.fps, 0.0, 1000.0, low_open=True)
        check_range("num_frames", self.num_frames, 3, 100_000)
        check_range("sim_hz", self.sim_hz, 240.0, 100_000.0)

    @property
    def substeps(self) -> int:
        """Physics steps per video frame, so that every frame falls exactly on a physics step."""
        return math.ceil(self.sim_hz / self.fps - 1e-9)

    @property
    def dt(self) -> float:
        return 1.0 / (self.fps * self.substeps)

    @property
    def times(self) -> np.ndarray:
        return np.arange(self.num_frames) / self.fps

    def params(self) -> dict:
        """The primitive's own parameters (the fields a subclass adds)."""
        base = {f.name for f in fields(Spec)}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in base}


@dataclass(frozen=True)
class Ramp:
    """A fixed box the object slides on. The slope rises towards +x at `angle_rad`."""

    angle_rad: float
    centre: tuple[float, float, float]
    half_extents: tuple[float, float, float]  # along the slope, across (y), thickness

    @property
    def orientation(self) -> tuple[float, float, float, float]:
        # Rotation about +y by -angle tilts the box's +x axis upwards (towards +z).
        s, c = math.sin(-self.angle_rad / 2), math.cos(-self.angle_rad / 2)
        return (0.0, s, 0.0, c)

    @property
    def up_slope(self) -> np.ndarray:
        return np.array([math.cos(self.angle_rad), 0.0, math.sin(self.angle_rad)])

    @property
    def normal(self) -> np.ndarray:
        return np.array([-math.sin(self.angle_rad), 0.0, math.cos(self.angle_rad)])


@dataclass(frozen=True)
class Trajectory:
    """Ground truth sampled at the video frames, world frame (metres, seconds)."""

    t: np.ndarray  # [T]
    position: np.ndarray  # [T, 3] body origin
    velocity: np.ndarray  # [T, 3]
    orientation: np.ndarray  # [T, 4] quaternion (x, y, z, w), for the renderer
    accel: np.ndarray  # [T, 3] analytic acceleration in force at each frame
    in_contact: np.ndarray  # [T] bool: touched anything but its ramp since the previous frame
    ramp: Ramp | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.t)
        for name in ("position", "velocity", "orientation", "accel", "in_contact"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"trajectory field {name} has {len(getattr(self, name))} rows, t has {n}")

    @property
    def num_frames(self) -> int:
        return len(self.t)


class Primitive:
    """Base class of a registered motion primitive; subclasses fill in the class attributes."""

    name: str = ""
    version: int = 1
    spec_cls: type[Spec] = Spec
    use: str = "flight"  # which object pool: flight | ramp
    # distribution -> parameter -> Range; documented in the README (Generating the benchmark).
    ranges: ClassVar[dict[str, dict[str, Range]]] = {}
    description: str = ""

    def sample_params(self, rng: np.random.Generator, distribution: str) -> dict:
        """Draw the primitive's own parameters for `distribution` (id | ood)."""
        return {k: r.draw(rng) for k, r in self.ranges[distribution].items()}

    def simulate(self, spec: Spec) -> Trajectory:
        raise NotImplementedError

    def framing_path(self, params: dict, half_height: float, t: np.ndarray) -> np.ndarray:
        """[T, 3] the analytic path of the object's centre at g = 9.81 (the path the camera frames),
        for the primitive's own parameters `params` and an object `half_height` m tall from centre to
        bottom: free flight until the centre comes down to `half_height`, then held where it landed
        (what it slides or rolls after landing is not modelled: the simulation frames the view)."""
        raise NotImplementedError

    def analytic_accel(self, spec: Spec, t: np.ndarray) -> np.ndarray:
        """[T, 3] acceleration the analytic law predicts at times t (between contacts)."""
        raise NotImplementedError

    def manifest_params(self, spec: Spec) -> dict:
        """Values of the manifest's parameter columns; None where a parameter does not apply."""
        keys = ("height_m", "speed_mps", "launch_angle_deg", "ramp_angle_deg", "friction")
        return {k: getattr(spec, k, None) for k in keys}

    def phrase(self, spec: Spec) -> str:
        """The verb phrase of the clip's prompt ("falls from 1.2 m")."""
        raise NotImplementedError


class FlightPrimitive(Primitive):
    """A body in free flight between contacts (dropped or thrown): gravity is its only force."""

    use = "flight"

    def analytic_accel(self, spec: Spec, t: np.ndarray) -> np.ndarray:
        a = np.zeros((len(t), 3))
        a[:, 2] = -spec.gravity
        return a


def flight_path(start, velocity, half_height: float, t: np.ndarray, g: float = GRAVITY) -> np.ndarray:
    """[T, 3] a point launched from `start` at `velocity` under gravity g, held where its height
    comes down to `half_height` (the centre of an object that lands on the floor)."""
    start, velocity = np.asarray(start, float), np.asarray(velocity, float)
    # Later root of start_z + vz t - g t^2 / 2 = half_height.
    c = start[2] - half_height
    t_land = (velocity[2] + math.sqrt(max(velocity[2] ** 2 + 2 * g * c, 0.0))) / g
    tt = np.minimum(np.asarray(t, float), t_land)[:, None]
    return start + velocity * tt + 0.5 * np.array([0.0, 0.0, -g]) * tt**2


PRIMITIVES: Registry[Primitive] = Registry("primitive")


def register(cls: type[Primitive]) -> type[Primitive]:
    PRIMITIVES.register(cls.name, cls())
    return cls


def get_primitive(name: str) -> Primitive:
    _load_all()
    return PRIMITIVES.get(name)


def primitive_names() -> list[str]:
    _load_all()
    return PRIMITIVES.names()


def _load_all() -> None:
    # Importing the modules registers them; the order of PRIMITIVES follows schema.PRIMITIVES.
    from newtonbench.generators.primitives import (  # noqa: F401
        free_fall,
        horizontal_throw,
        parabolic_throw,
        ramp_down,
        ramp_up,
    )
