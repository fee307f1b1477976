"""ramp_up: an object launched up an incline decelerates, stops, and slides back if tan θ > μ.

Law: g (sin θ + μ cos θ) along the slope against the motion while it rises; after it stops,
g (sin θ − μ cos θ) down the slope if tan θ > μ, else it stays at rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import ClassVar

import numpy as np

from newtonbench.errors import check_range
from newtonbench.generators.primitives.base import Primitive, Range, Spec, Trajectory, register
from newtonbench.generators.primitives.ramp_down import slope_accel
from newtonbench.schema import GRAVITY


@dataclass(frozen=True, kw_only=True)
class RampUpSpec(Spec):
    ramp_angle_deg: float
    friction: float
    speed_mps: float  # launch speed up the slope

    def __post_init__(self):
        super().__post_init__()
        check_range("ramp_angle_deg", self.ramp_angle_deg, 0.0, 80.0, low_open=True)
        check_range("friction", self.friction, 0.0, 2.0)
        check_range("speed_mps", self.speed_mps, 0.0, 100.0, low_open=True)


def path(g: float, spec: RampUpSpec, t: np.ndarray) -> np.ndarray:
    """Analytic distance up the slope from the start at times t."""
    up = slope_accel(g, spec.ramp_angle_deg, spec.friction, +1.0)
    down = slope_accel(g, spec.ramp_angle_deg, spec.friction, -1.0)
    t_stop = spec.speed_mps / up
    s_max = spec.speed_mps * t_stop - 0.5 * up * t_stop**2
    rising = spec.speed_mps * t - 0.5 * up * t**2
    after = s_max - 0.5 * max(down, 0.0) * (t - t_stop) ** 2
    return np.where(t < t_stop, rising, after)


@register
class RampUp(Primitive):
    name = "ramp_up"
    version = 2
    spec_cls = RampUpSpec
    use = "ramp"
    description = "launched up an incline; decelerates, stops, and slides back down if tan θ > μ"
    ranges: ClassVar[dict[str, dict[str, Range]]] = {
        "id": {"ramp_angle_deg": Range(15.0, 35.0), "friction": Range(0.1, 0.4), "speed_mps": Range(1.5, 3.0)},
        "ood": {"ramp_angle_deg": Range(15.0, 35.0), "friction": Range(0.45, 0.6), "speed_mps": Range(3.5, 4.5)},
    }

    def stop_time(self, spec, g=None) -> float:
        return spec.speed_mps / slope_accel(spec.gravity if g is None else g, spec.ramp_angle_deg, spec.friction, 1.0)

    def simulate(self, spec: RampUpSpec) -> Trajectory:
        from newtonbench.generators.simulation import layout_ramp, simulate_ramp

        t = np.linspace(0.0, (spec.num_frames - 1) / spec.fps, 512)
        s = path(GRAVITY, spec, t)  # nominal g: the same ramp whatever spec.gravity
        ramp, start = layout_ramp(spec, math.radians(spec.ramp_angle_deg), float(min(s.min(), 0.0)), float(s.max()))
        return simulate_ramp(spec, ramp, start, spec.speed_mps, lambda tt: self.analytic_accel(spec, tt))

    def framing_path(self, params, half_height, t):
        th = math.radians(params["ramp_angle_deg"])
        s = path(GRAVITY, SimpleNamespace(**params), np.asarray(t, float))
        return s[:, None] * np.array([math.cos(th), 0.0, math.sin(th)])

    def analytic_accel(self, spec, t):
        th = math.radians(spec.ramp_angle_deg)
        d = np.array([math.cos(th), 0.0, math.sin(th)])
        up = slope_accel(spec.gravity, spec.ramp_angle_deg, spec.friction, +1.0)
        down = slope_accel(spec.gravity, spec.ramp_angle_deg, spec.friction, -1.0)
        after = -down * d if down > 0 else np.zeros(3)
        t = np.asarray(t)
        return np.where((t < self.stop_time(spec))[:, None], -up * d, after)

    def phrase(self, spec) -> str:
        steep = "steep" if spec.ramp_angle_deg >= 28 else "gentle"
        back = "slides back down" if math.tan(math.radians(spec.ramp_angle_deg)) > spec.friction else "stops"
        return f"is pushed up a {steep} {spec.ramp_angle_deg:.0f}-degree ramp at {spec.speed_mps:.1f} m/s, slows, and {back}"
