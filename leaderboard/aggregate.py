"""From runs to leaderboard cells: per-run means over clips, then mean ± std over the runs of each model.

Aggregation rule (README, The ranking rule):
- A run's value for a metric in a slice (primitive × distribution, or "all") is the mean of that metric over
  the slice's scored clips (status "ok", non-null) in results.parquet: for a primitive × distribution group
  and for the overall slice this is the same number as summary.json's group mean, which is checked.
  Averaging rows (not summary.json's group means) is what lets us form the per-primitive and per-distribution
  slices that summary.json does not hold.
- A model's cell is the mean ± sample standard deviation (ddof=1) of its runs' values; a single run has no
  std. A cell with no value is missing ("—"), never 0.
- The Newton score (see `newton_score`) is computed per run and aggregated the same way; models are ranked
  by their mean overall Newton score.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from newtonbench.leaderboard.runs import DeclaredMetric, ResultsError, Run, metric_infos
from newtonbench.schema import DISTRIBUTIONS, PRIMITIVES

log = logging.getLogger(__name__)

ALL = "all"
SCORE = "score"
COVERAGE = "coverage"
# The score's two physics inputs (names from the scorer's declarations, schema.py contract).
ACCEL_RATIO = "accel_ratio"
TRAJECTORY = "l2_norm"

# Fields that are not metrics of the scorer but the leaderboard's own summaries of them.
DERIVED = {
    SCORE: DeclaredMetric(
        SCORE, "", True, "1",
        "Newton score: mean over primitives of coverage × min(r, 1/r) × (1 − l2_norm), r = mean accel_ratio",
    ),
    COVERAGE: DeclaredMetric(COVERAGE, "", True, "1", "fraction of the slice's clips that were scored (status ok)"),
}

MAX_SCATTER_POINTS = 400  # per model: keeps a 10,000-clip leaderboard page small


@dataclass(frozen=True)
class Cell:
    mean: float
    std: float | None  # None for a single run
    n_runs: int

    def __post_init__(self):
        if not math.isfinite(self.mean) or self.n_runs < 1:
            raise ValueError(f"cell mean {self.mean!r} over {self.n_runs} run(s) is not a value")


@dataclass(frozen=True)
class Model:
    name: str
    card: dict | None
    runs: tuple[str, ...]  # result folders


@dataclass(frozen=True)
class Leaderboard:
    models: tuple[Model, ...]  # in rank order
    metrics: dict[str, DeclaredMetric]  # the scorer's declarations, in declaration order
    primitives: tuple[str, ...]
    distributions: tuple[str, ...]
    # (primitive | "all", distribution | "all") -> model name -> field -> Cell (absent = missing)
    cells: dict[tuple[str, str], dict[str, dict[str, Cell]]]
    benchmark: dict
    split: str
    scatter: dict[str, list[tuple[float, float, str, str]]] = field(repr=False, default_factory=dict)

    def info(self, name: str) -> DeclaredMetric:
        return DERIVED[name] if name in DERIVED else self.metrics[name]

    def cell(self, primitive: str, distribution: str, model: str, name: str) -> Cell | None:
        return self.cells.get((primitive, distribution), {}).get(model, {}).get(name)

    @property
    def slices(self) -> list[tuple[str, str]]:
        return list(self.cells)

    def best(self, primitive: str, distribution: str, name: str) -> set[str]:
        """Models whose mean is the best in this column (ties share it); empty for undirected fields."""
        info = self.info(name)
        if not info.has_direction:
            return set()
        vals = {m.name: c.mean for m in self.models if (c := self.cell(primitive, distribution, m.name, name))}
        if not vals:
            return set()
        bad = {k: info.badness(v) for k, v in vals.items()}
        top = min(bad.values())
        return {k for k, b in bad.items() if math.isclose(b, top, rel_tol=1e-12, abs_tol=1e-15)}


def _slice_mask(df: pd.DataFrame, primitive: str, distribution: str) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    if primitive != ALL:
        mask &= df["primitive"] == primitive
    if distribution != ALL:
        mask &= df["distribution"] == distribution
    return mask


def _mean(values: pd.Series) -> float | None:
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else None


def newton_score(per_primitive: list[tuple[float, float | None, float | None]]) -> float | None:
    """The overall ranking rule, for one run on one slice.

    per_primitive: (coverage, mean accel_ratio, mean l2_norm) for every primitive of the slice.
    score = mean over primitives of  coverage × min(r, 1/r) × max(0, 1 − l2_norm)

    Each factor is in [0, 1] and is 1 only for a perfect model: min(r, 1/r) is 1 when objects accelerate
    at the true rate and falls symmetrically in log space (2x too fast = 2x too slow = 0.5); 1 − l2_norm is
    the trajectory's accuracy as a fraction of the image diagonal; coverage charges clips the model's videos
    could not be scored on. No free parameter. Primitives weigh equally, whatever their clip counts.
    A primitive with no scored clip contributes 0; None if a scored primitive lacks either input.
    """
    if not per_primitive:
        return None
    parts = []
    for coverage, ratio, l2n in per_primitive:
        if coverage == 0:
            parts.append(0.0)
            continue
        if ratio is None or l2n is None:
            return None
        accel = min(ratio, 1.0 / ratio) if ratio > 0 else 0.0
        parts.append(coverage * accel * max(0.0, 1.0 - l2n))
    return float(np.mean(parts))


def _combine(values: list[float | None]) -> Cell | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return None
    std = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
    return Cell(float(np.mean(vals)), std, len(vals))


def _check_against_summary(run: Run, df: pd.DataFrame, names: list[str]) -> None:
    """Warn when results.parquet and summary.json disagree (an edited or truncated file)."""
    for group in run.summary.get("groups") or []:
        p, d = group.get("primitive"), group.get("distribution")
        sub = df[_slice_mask(df, p, d) & (df["status"] == "ok")]
        for name, stats in (group.get("metrics") or {}).items():
            if name not in names or name not in sub or not isinstance(stats, dict) or stats.get("mean") is None:
                continue
            mine = _mean(sub[name])
            if mine is None or not math.isclose(mine, float(stats["mean"]), rel_tol=1e-6, abs_tol=1e-9):
                log.warning(
                    "%s: %s mean for %s/%s is %s in results.parquet but %s in summary.json",
                    run.path, name, p, d, mine, stats["mean"],
                )


def build(runs: list[Run], split: str = "test") -> Leaderboard:
    """Aggregate comparable runs (see runs.load_runs) into a ranked Leaderboard of the given split."""
    if split not in ("train", "test", ALL):
        raise ResultsError(f"split {split!r} is invalid; allowed: train, test, all")
    infos = metric_infos(runs)
    frames = {}
    for run in runs:
        df = run.results
        if split != ALL:
            df = df[df["split"] == split]
        frames[run.path] = df
        if split == ALL or (run.results["split"] == split).all():
            _check_against_summary(run, df, list(infos))
    present = pd.concat([f[["primitive", "distribution"]] for f in frames.values()], ignore_index=True)
    if present.empty:
        raise ResultsError(f"the results hold no clip of split {split!r}")
    # Known primitives in the schema's order, then any others (a registered newer primitive) by name.
    seen = set(present["primitive"])
    primitives = tuple(p for p in PRIMITIVES if p in seen) + tuple(sorted(seen - set(PRIMITIVES)))
    seen_d = set(present["distribution"])
    distributions = tuple(d for d in DISTRIBUTIONS if d in seen_d)
    slices = [(ALL, ALL)] + [(p, ALL) for p in primitives] + [(ALL, d) for d in distributions]
    slices += [(p, d) for p in primitives for d in distributions]
    # Clips expected per primitive × distribution: the most any run holds (all runs share one benchmark),
    # so a run that skipped clips or a whole primitive has coverage below 1.
    counts = [f.groupby(["primitive", "distribution"]).size() for f in frames.values()]
    expected = pd.concat(counts, axis=1).fillna(0).max(axis=1).astype(int).to_dict()
    metric_names = [n for n in infos if any(n in f.columns for f in frames.values())]
    if ACCEL_RATIO not in metric_names or TRAJECTORY not in metric_names:
        log.warning("results lack %s or %s: the Newton score is missing", ACCEL_RATIO, TRAJECTORY)

    per_run: dict[tuple[str, str], dict[str, list[dict]]] = {s: {} for s in slices}
    for run in runs:
        df = frames[run.path]
        ok = df[df["status"] == "ok"]
        for p, d in slices:
            sub_ok = ok[_slice_mask(ok, p, d)]
            n_exp = int(sum(v for (pp, dd), v in expected.items() if p in (ALL, pp) and d in (ALL, dd)))
            if n_exp == 0:
                continue
            values: dict[str, float | None] = {n: _mean(sub_ok[n]) if n in sub_ok else None for n in metric_names}
            values[COVERAGE] = len(sub_ok) / n_exp
            parts = []
            for prim in primitives if p == ALL else (p,):
                n_p = int(sum(v for (pp, dd), v in expected.items() if pp == prim and d in (ALL, dd)))
                if n_p == 0:
                    continue
                rows = sub_ok[sub_ok["primitive"] == prim]
                ratio = _mean(rows[ACCEL_RATIO]) if ACCEL_RATIO in rows else None
                l2n = _mean(rows[TRAJECTORY]) if TRAJECTORY in rows else None
                parts.append((len(rows) / n_p, ratio, l2n))
            values[SCORE] = newton_score(parts)
            per_run[(p, d)].setdefault(run.model, []).append(values)

    names = [SCORE, COVERAGE, *metric_names]
    cells: dict[tuple[str, str], dict[str, dict[str, Cell]]] = {}
    for s, by_model in per_run.items():
        if not by_model:
            continue
        cells[s] = {}
        for model, vals in by_model.items():
            row = {n: c for n in names if (c := _combine([v[n] for v in vals])) is not None}
            cells[s][model] = row

    by_name: dict[str, list[Run]] = {}
    for run in runs:
        by_name.setdefault(run.model, []).append(run)

    def rank_key(name: str):
        c = cells.get((ALL, ALL), {}).get(name, {}).get(SCORE)
        return (c is None, -(c.mean if c else 0.0), name)

    models = tuple(
        Model(name, next((r.card for r in rs if r.card), None), tuple(str(r.path) for r in rs))
        for name, rs in sorted(by_name.items(), key=lambda kv: rank_key(kv[0]))
    )
    return Leaderboard(
        models=models,
        metrics={n: infos[n] for n in metric_names},
        primitives=primitives,
        distributions=distributions,
        cells=cells,
        benchmark=dict(runs[0].summary["benchmark"]),
        split=split,
        scatter=_scatter_points(runs, frames),
    )


def _scatter_points(runs: list[Run], frames: dict) -> dict[str, list[tuple[float, float, str, str]]]:
    """(|true acceleration|, |fitted acceleration|, primitive, clip_id) per scored clip, per model, in m/s²."""
    need = ("accel_fit_x", "accel_fit_z", "accel_true_x", "accel_true_z")
    out: dict[str, list] = {}
    for run in runs:
        df = frames[run.path]
        if not all(c in df for c in need):
            continue
        df = df[(df["status"] == "ok")].dropna(subset=list(need)).sort_values("clip_id")
        fit = np.hypot(df["accel_fit_x"].to_numpy(float), df["accel_fit_z"].to_numpy(float))
        true = np.hypot(df["accel_true_x"].to_numpy(float), df["accel_true_z"].to_numpy(float))
        pts = out.setdefault(run.model, [])
        pts.extend(zip(true.tolist(), fit.tolist(), df["primitive"].tolist(), df["clip_id"].tolist()))
    for model, pts in out.items():
        if len(pts) > MAX_SCATTER_POINTS:
            # An even, deterministic thinning keeps every primitive represented.
            idx = np.linspace(0, len(pts) - 1, MAX_SCATTER_POINTS).round().astype(int)
            out[model] = [pts[i] for i in idx]
    return out
