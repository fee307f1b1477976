"""ramp_down: an object released on an incline slides down against kinetic friction.

Law: |a| = g (sin θ − μ cos θ) along the slope, downwards (needs tan θ > μ to slide at all).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from newtonbench.errors import InvalidValueError, check_range
from newtonbench.generators.primitives.base import Primitive, Range, Spec, Trajectory, register
from newtonbench.schema import GRAVITY

# Accepted down-slope accelerations at g = 9.81 (m/s^2): slower is hard to see in 2 s, faster runs
# the object so far (5.6 m in 2 s at 3 m/s^2) that the object grows to 2 m to stay a sizeable blob (sampling.py).
ACCEL_RANGE = (0.4, 3.0)


@dataclass(frozen=True, kw_only=True)
class RampDownSpec(Spec):
    ramp_angle_deg: float
    friction: float  # kinetic friction coefficient between object and ramp

    def __post_init__(self):
        super().__post_init__()
        check_range("ramp_angle_deg", self.ramp_angle_deg, 0.0, 80.0, low_open=True)
        check_range("friction", self.friction, 0.0, 2.0)
        if math.tan(math.radians(self.ramp_angle_deg)) <= self.friction:
            raise InvalidValueError(
                f"friction={self.friction!r} holds the object on a {self.ramp_angle_deg}° ramp; "
                f"allowed: < tan(ramp_angle) = {math.tan(math.radians(self.ramp_angle_deg)):.3f}")


def slope_accel(g: float, angle_deg: float, friction: float, sign: float) -> float:
    """g (sin θ + sign μ cos θ): sign -1 sliding down, +1 sliding up (magnitude of the deceleration)."""
    th = math.radians(angle_deg)
    return g * (math.sin(th) + sign * friction * math.cos(th))


@register
class RampDown(Primitive):
    name = "ramp_down"
    version = 2
    spec_cls = RampDownSpec
    use = "ramp"
    description = "released at rest on an incline; slides down against kinetic friction"
    ranges: ClassVar[dict[str, dict[str, Range]]] = {
        "id": {"ramp_angle_deg": Range(20.0, 35.0), "friction": Range(0.1, 0.4)},
        "ood": {"ramp_angle_deg": Range(20.0, 35.0), "friction": Range(0.45, 0.6)},
    }

    def sample_params(self, rng, distribution):
        # Rejection keeps the nominal acceleration in ACCEL_RANGE; deterministic given the rng.
        for _ in range(10_000):
            params = super().sample_params(rng, distribution)
            a = slope_accel(GRAVITY, params["ramp_angle_deg"], params["friction"], -1.0)
            if ACCEL_RANGE[0] <= a <= ACCEL_RANGE[1]:
                return params
        raise RuntimeError(f"no ramp_down parameters in {self.ranges[distribution]} give a in {ACCEL_RANGE}")

    def _accel_vec(self, spec, g):
        th = math.radians(spec.ramp_angle_deg)
        return -slope_accel(g, spec.ramp_angle_deg, spec.friction, -1.0) * np.array([math.cos(th), 0.0, math.sin(th)])

    def simulate(self, spec: RampDownSpec) -> Trajectory:
        from newtonbench.generators.simulation import layout_ramp, simulate_ramp

        # The ramp is sized from the nominal-g path, so a counterfactual gravity shows the same scene.
        t_end = (spec.num_frames - 1) / spec.fps
        travel = 0.5 * slope_accel(GRAVITY, spec.ramp_angle_deg, spec.friction, -1.0) * t_end**2
        ramp, start = layout_ramp(spec, math.radians(spec.ramp_angle_deg), -travel, 0.0)
        return simulate_ramp(spec, ramp, start, 0.0, lambda t: self.analytic_accel(spec, t))

    def framing_path(self, params, half_height, t):
        a = slope_accel(GRAVITY, params["ramp_angle_deg"], params["friction"], -1.0)
        th = math.radians(params["ramp_angle_deg"])
        return -0.5 * a * np.asarray(t, float)[:, None] ** 2 * np.array([math.cos(th), 0.0, math.sin(th)])

    def analytic_accel(self, spec, t):
        return np.tile(self._accel_vec(spec, spec.gravity), (len(t), 1))

    def phrase(self, spec) -> str:
        steep = "steep" if spec.ramp_angle_deg >= 28 else "gentle"
        return f"slides down a {steep} {spec.ramp_angle_deg:.0f}-degree ramp"
