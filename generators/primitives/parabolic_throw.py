"""parabolic_throw: an object launched upwards at an angle. Law: a = (0, 0, -g) until it lands."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from newtonbench.errors import check_range
from newtonbench.generators.primitives.base import (
    FlightPrimitive,
    Range,
    Spec,
    Trajectory,
    flight_path,
    register,
)
from newtonbench.generators.primitives.free_fall import check_clearance


@dataclass(frozen=True, kw_only=True)
class ParabolicThrowSpec(Spec):
    height_m: float  # launch height of the object's centre
    speed_mps: float
    launch_angle_deg: float  # above the horizontal, towards +x

    def __post_init__(self):
        super().__post_init__()
        check_clearance(self, self.height_m)
        check_range("speed_mps", self.speed_mps, 0.0, 100.0, low_open=True)
        check_range("launch_angle_deg", self.launch_angle_deg, 0.0, 90.0, low_open=True)


@register
class ParabolicThrow(FlightPrimitive):
    name = "parabolic_throw"
    version = 2
    spec_cls = ParabolicThrowSpec
    description = "launched upwards at an angle; rises, falls and lands"
    ranges: ClassVar[dict[str, dict[str, Range]]] = {
        "id": {"height_m": Range(0.3, 1.0), "speed_mps": Range(2.5, 4.5), "launch_angle_deg": Range(30.0, 60.0)},
        "ood": {"height_m": Range(1.5, 2.5), "speed_mps": Range(5.0, 6.5), "launch_angle_deg": Range(30.0, 60.0)},
    }

    @staticmethod
    def _velocity(speed: float, angle_deg: float) -> np.ndarray:
        a = math.radians(angle_deg)
        return np.array([speed * math.cos(a), 0.0, speed * math.sin(a)])

    def simulate(self, spec: ParabolicThrowSpec) -> Trajectory:
        from newtonbench.generators.simulation import simulate_flight

        v = self._velocity(spec.speed_mps, spec.launch_angle_deg)
        return simulate_flight(spec, np.array([0.0, 0.0, spec.height_m]), v)

    def framing_path(self, params, half_height, t):
        v = self._velocity(params["speed_mps"], params["launch_angle_deg"])
        return flight_path((0.0, 0.0, params["height_m"]), v, half_height, t)

    def phrase(self, spec) -> str:
        return f"is thrown at {spec.speed_mps:.1f} m/s, {spec.launch_angle_deg:.0f} degrees above the horizontal"
