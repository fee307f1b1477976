"""free_fall: an object released from rest at a height falls onto the floor. Law: a = (0, 0, -g)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from newtonbench.errors import InvalidValueError
from newtonbench.generators.primitives.base import (
    FlightPrimitive,
    Range,
    Spec,
    Trajectory,
    flight_path,
    register,
)


@dataclass(frozen=True, kw_only=True)
class FreeFallSpec(Spec):
    height_m: float  # height of the object's centre above the floor at release

    def __post_init__(self):
        super().__post_init__()
        check_clearance(self, self.height_m)


def check_clearance(spec: Spec, height_m: float) -> None:
    """The object must start above the floor (its centre higher than half its height)."""
    from newtonbench.generators.simulation import object_half_height

    low = object_half_height(spec) + 0.01
    if not height_m >= low:
        raise InvalidValueError(f"height_m={height_m!r} puts a {spec.object_size_m} m {spec.object} into the floor; "
                                f"allowed: >= {low:.3f}")


@register
class FreeFall(FlightPrimitive):
    name = "free_fall"
    version = 2
    spec_cls = FreeFallSpec
    description = "released from rest at a height; falls and lands on the floor"
    ranges: ClassVar[dict[str, dict[str, Range]]] = {
        "id": {"height_m": Range(0.5, 2.0)},
        "ood": {"height_m": Range(2.5, 4.0)},
    }

    def simulate(self, spec: FreeFallSpec) -> Trajectory:
        from newtonbench.generators.simulation import simulate_flight

        return simulate_flight(spec, np.array([0.0, 0.0, spec.height_m]), np.zeros(3))

    def framing_path(self, params, half_height, t):
        return flight_path((0.0, 0.0, params["height_m"]), (0.0, 0.0, 0.0), half_height, t)

    def phrase(self, spec) -> str:
        return f"falls from a height of {spec.height_m:.1f} m"
