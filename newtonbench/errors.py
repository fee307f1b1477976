"""One error hierarchy. The CLI turns any NewtonBenchError into a one-line message and exit code 2."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable


class NewtonBenchError(Exception):
    """Base class of every error a user can cause; never raised for our own bugs."""


class InvalidValueError(NewtonBenchError, ValueError):
    """A value out of its allowed range; the message names the value and what is allowed."""


class UnknownNameError(NewtonBenchError, KeyError):
    """An unknown registered name (primitive, metric, reward, model family ...)."""

    def __init__(self, kind: str, name: str, available: Iterable[str]):
        available = sorted(available)
        close = difflib.get_close_matches(name, available, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        self.message = f"unknown {kind} {name!r}{hint} available: {', '.join(available)}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class MissingDependencyError(NewtonBenchError, ImportError):
    """An optional dependency is not installed; the message gives the pip command."""

    def __init__(self, package: str, extra: str, purpose: str = ""):
        why = f" for {purpose}" if purpose else ""
        super().__init__(f"{package} is needed{why}: pip install 'newtonbench[{extra}]'")


class DatasetError(NewtonBenchError):
    """A benchmark folder is missing, malformed or inconsistent."""


class RendererUnavailableError(NewtonBenchError):
    """The renderer asked for cannot run on this machine."""


class DeviceUnavailableError(NewtonBenchError):
    """A device (cuda) was asked for and is not present."""


def check_range(name: str, value, low=None, high=None, *, low_open: bool = False) -> None:
    """Raise InvalidValueError unless low <= value <= high (or low < value when low_open). NaN is
    never in range (it compares false with every bound)."""
    bad = (isinstance(value, float) and math.isnan(value)) or (low is not None and (value <= low if low_open else value < low)) or (
        high is not None and value > high
    )
    if bad:
        lo = "" if low is None else (f"> {low}" if low_open else f">= {low}")
        hi = "" if high is None else f"<= {high}"
        allowed = " and ".join(s for s in (lo, hi) if s)
        raise InvalidValueError(f"{name}={value!r} is out of range; allowed: {allowed}")
