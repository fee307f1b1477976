"""horizontal_throw: an object launched horizontally from a height. Law: a = (0, 0, -g) until it lands."""

from __future__ import annotations

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
class HorizontalThrowSpec(Spec):
    height_m: float  # launch height of the object's centre
    speed_mps: float  # launch speed along +x

    def __post_init__(self):
        super().__post_init__()
        check_clearance(self, self.height_m)
        check_range("speed_mps", self.speed_mps, 0.0, 100.0, low_open=True)


@register
class HorizontalThrow(FlightPrimitive):
    name = "horizontal_throw"
    version = 2
    spec_cls = HorizontalThrowSpec
    description = "launched horizontally from a height; flies on a parabola and lands"
    ranges: ClassVar[dict[str, dict[str, Range]]] = {
        "id": {"height_m": Range(0.8, 2.0), "speed_mps": Range(1.0, 3.0)},
        "ood": {"height_m": Range(2.5, 3.5), "speed_mps": Range(3.5, 5.0)},
    }

    def simulate(self, spec: HorizontalThrowSpec) -> Trajectory:
        from newtonbench.generators.simulation import simulate_flight

        return simulate_flight(spec, np.array([0.0, 0.0, spec.height_m]), np.array([spec.speed_mps, 0.0, 0.0]))

    def framing_path(self, params, half_height, t):
        return flight_path((0.0, 0.0, params["height_m"]), (params["speed_mps"], 0.0, 0.0), half_height, t)

    def phrase(self, spec) -> str:
        return f"is thrown horizontally at {spec.speed_mps:.1f} m/s from a height of {spec.height_m:.1f} m"
