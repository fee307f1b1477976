"""Reading `newtonbench score` outputs (RESULTS/results.parquet + RESULTS/summary.json) and refusing to mix
results that are not comparable.

The leaderboard reads only these two files per run (lm-evaluation-harness style): metric metadata comes from
summary.json["metrics"] (declared once by the scorer), per-clip values from results.parquet. Nothing here
recomputes a metric.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from newtonbench.errors import NewtonBenchError
from newtonbench.schema import RESULTS_FORMAT_VERSION, RESULTS_ID_COLUMNS

log = logging.getLogger(__name__)

SUMMARY = "summary.json"
RESULTS = "results.parquet"


class ResultsError(NewtonBenchError):
    """A results folder is missing, malformed, or not comparable with the others."""


_SUPERSCRIPTS = str.maketrans("0123456789-", "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079\u207b")


def pretty_unit(unit) -> str:
    """The declared unit as a reader wants it: "1" (dimensionless) is no unit, "m/s^2" is "m/s²"."""
    unit = "" if unit is None or str(unit) == "1" else str(unit)
    return re.sub(r"\^(-?\d+)", lambda m: m.group(1).translate(_SUPERSCRIPTS), unit)


@dataclass(frozen=True)
class DeclaredMetric:
    """One metric's declaration as the scorer wrote it into summary.json["metrics"] (the JSON form of
    newtonbench.metrics.info.MetricInfo, read back without torch; results of other versions too)."""

    name: str
    unit: str
    higher_is_better: bool | None  # None: no direction (signed quantities) or a target value
    version: str
    description: str = ""
    target: float | None = None  # best value when neither higher nor lower is better (accel_ratio: 1)

    def __post_init__(self):
        if self.target is not None and self.higher_is_better is not None:
            raise ResultsError(f"metric {self.name!r} declares both a direction and a target {self.target!r}")

    @property
    def has_direction(self) -> bool:
        return self.higher_is_better is not None or self.target is not None

    @property
    def arrow(self) -> str:
        if self.target is not None:
            return f"→{self.target:g}"
        return {True: "↑", False: "↓", None: ""}[self.higher_is_better]

    def badness(self, value: float) -> float:
        """A number that is smaller for a better value (for picking the best cell and sorting)."""
        if self.target is not None:
            # Ratios: being 2x too fast is as wrong as 2x too slow, so compare in log space.
            if self.target > 0 and value > 0:
                return abs(math.log(value / self.target))
            return math.inf if self.target > 0 else abs(value - self.target)
        if self.higher_is_better is None:
            return 0.0
        return -value if self.higher_is_better else value

    @classmethod
    def from_declaration(cls, name: str, decl: dict) -> DeclaredMetric:
        hib = decl.get("higher_is_better")
        target = decl.get("target")
        return cls(
            name=name,
            unit=pretty_unit(decl.get("unit")),
            higher_is_better=None if hib is None else bool(hib),
            version=str(decl.get("version", "")),
            description=str(decl.get("description") or ""),
            target=None if target is None else float(target),
        )


@dataclass(frozen=True)
class Run:
    """One `newtonbench score` output folder."""

    path: Path
    summary: dict
    results: pd.DataFrame = field(repr=False)

    @property
    def model(self) -> str:
        return str(self.summary["model"]["name"])

    @property
    def card(self) -> dict | None:
        card = self.summary["model"].get("card")
        return card if isinstance(card, dict) else None

    @property
    def metrics(self) -> dict[str, DeclaredMetric]:
        return {n: DeclaredMetric.from_declaration(n, d) for n, d in self.summary["metrics"].items()}


def discover(paths) -> list[Path]:
    """Result folders named by `paths`: each path is a result folder or a folder holding some (searched
    recursively), so `newtonbench leaderboard results/` finds every run below it."""
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise ResultsError(f"results path '{p}' does not exist")
        if (p / SUMMARY).is_file():
            found.append(p)
            continue
        below = sorted(s.parent for s in p.rglob(SUMMARY)) if p.is_dir() else []
        if not below:
            raise ResultsError(f"'{p}' holds no {SUMMARY}; expected a folder written by `newtonbench score`")
        found.extend(below)
    unique = list(dict.fromkeys(f.resolve() for f in found))
    return unique


def load_run(folder: str | Path) -> Run:
    folder = Path(folder)
    try:
        summary = json.loads((folder / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ResultsError(f"{folder / SUMMARY}: cannot read ({e.__class__.__name__}: {e})") from e
    for key in ("format_version", "model", "benchmark", "metrics"):
        if key not in summary:
            raise ResultsError(f"{folder / SUMMARY} has no {key!r}; not a `newtonbench score` summary")
    if str(summary["format_version"]) != RESULTS_FORMAT_VERSION:
        raise ResultsError(
            f"{folder / SUMMARY} has results format_version {summary['format_version']!r}; "
            f"this newtonbench reads {RESULTS_FORMAT_VERSION!r}"
        )
    if not isinstance(summary["model"], dict) or not summary["model"].get("name"):
        raise ResultsError(f"{folder / SUMMARY} names no model (model.name)")
    if not (folder / RESULTS).is_file():
        raise ResultsError(f"{folder} has {SUMMARY} but no {RESULTS}")
    try:
        results = pd.read_parquet(folder / RESULTS)
    except Exception as e:  # pyarrow raises several unrelated types for a damaged file
        raise ResultsError(f"{folder / RESULTS}: cannot read ({e.__class__.__name__}: {e})") from e
    missing = [c for c in RESULTS_ID_COLUMNS if c not in results.columns]
    if missing:
        raise ResultsError(f"{folder / RESULTS} lacks column(s) {', '.join(missing)}")
    return Run(folder, summary, results)


def _benchmark_key(run: Run) -> tuple:
    b = run.summary["benchmark"]
    return (
        b.get("manifest_sha256"),
        str(b.get("dataset_format_version")),
        json.dumps(b.get("primitive_versions") or {}, sort_keys=True),
    )


def _describe_benchmark(run: Run) -> str:
    b = run.summary["benchmark"]
    versions = ", ".join(f"{k} v{v}" for k, v in sorted((b.get("primitive_versions") or {}).items()))
    sha = str(b.get("manifest_sha256"))[:12]
    return f"manifest {sha}, dataset format {b.get('dataset_format_version')}, {versions or 'no primitive versions'}"


def check_compatible(runs: list[Run]) -> None:
    """Refuse (one line) to put results from different benchmark versions or metric versions side by side."""
    if not runs:
        raise ResultsError("no results to build a leaderboard from")
    first = runs[0]
    for run in runs[1:]:
        if _benchmark_key(run) != _benchmark_key(first):
            raise ResultsError(
                f"results come from different benchmark versions: '{first.path}' ({_describe_benchmark(first)}) "
                f"vs '{run.path}' ({_describe_benchmark(run)}); build one leaderboard per benchmark version"
            )
    seen: dict[str, tuple[str, Path]] = {}
    for run in runs:
        for name, info in run.metrics.items():
            if name in seen and seen[name][0] != info.version:
                raise ResultsError(
                    f"metric {name!r} has version {seen[name][0]!r} in '{seen[name][1]}' but {info.version!r} "
                    f"in '{run.path}'; rescore both with the same newtonbench version"
                )
            seen.setdefault(name, (info.version, run.path))


def load_runs(paths) -> list[Run]:
    """Load every run under `paths` and check that they are comparable (raises ResultsError otherwise)."""
    runs = [load_run(p) for p in discover(paths)]
    check_compatible(runs)
    log.info("loaded %d run(s) of %d model(s)", len(runs), len({r.model for r in runs}))
    return runs


def metric_infos(runs: list[Run]) -> dict[str, DeclaredMetric]:
    """The union of the runs' metric declarations, in declaration order (versions already checked equal)."""
    out: dict[str, DeclaredMetric] = {}
    for run in runs:
        for name, info in run.metrics.items():
            out.setdefault(name, info)
    return out
