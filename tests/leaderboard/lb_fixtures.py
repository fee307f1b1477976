"""Helpers that write small results folders by hand to the `newtonbench score` contract (newtonbench/schema.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from newtonbench.metrics.info import declarations
from newtonbench.schema import RESULTS_FORMAT_VERSION

# The scorer's own declarations (metrics/info.py, as it writes them into summary.json), for the columns
# these fixtures fill.
METRICS = declarations(["l2", "l2_norm", "iou", "accel_fit_x", "accel_fit_z", "accel_ratio"])
BENCHMARK = {"path": "/nonexistent/bench", "manifest_sha256": "ab" * 32, "dataset_format_version": "1",
             "primitive_versions": {"free_fall": 1, "ramp_down": 1}}


def row(primitive, distribution, index, status="ok", **metrics):
    """One results.parquet row; metrics not given are null (as for a failed clip)."""
    r = {
        "clip_id": f"{primitive}-test-{distribution}-{index:06d}",
        "primitive": primitive, "split": "test", "distribution": distribution,
        "status": status, "status_detail": "" if status == "ok" else "no video",
        "accel_true_x": 0.0, "accel_true_z": -9.81,
    }
    for name in METRICS:
        r[name] = metrics.get(name)
    return r


def write_results(folder: Path, model: str, rows: list[dict], *, card=None, benchmark=None, metrics=None,
                  config=None, drop_columns=()) -> Path:
    """Write RESULTS/results.parquet and RESULTS/summary.json as `newtonbench score` does."""
    folder.mkdir(parents=True, exist_ok=True)
    metrics = metrics or METRICS
    df = pd.DataFrame([{"model": model, **r} for r in rows]).drop(columns=list(drop_columns))
    for name in metrics:
        if name in df:
            df[name] = df[name].astype("float64")
    df.to_parquet(folder / "results.parquet")
    groups = []
    for (p, d), g in df.groupby(["primitive", "distribution"]):
        ok = g[g["status"] == "ok"]
        stats = {n: {"mean": float(ok[n].mean()), "ci_low": None, "ci_high": None, "n": int(ok[n].notna().sum())}
                 for n in metrics if n in ok and ok[n].notna().any()}
        groups.append({"primitive": p, "distribution": d, "n": len(g), "n_ok": len(ok),
                       "coverage": len(ok) / len(g), "metrics": stats})
    summary = {
        "format_version": RESULTS_FORMAT_VERSION, "newtonbench_version": "0.1.0", "created": "2026-11-24T00:00:00",
        "model": {"name": model, "card": card},
        "benchmark": benchmark or BENCHMARK,
        "metrics": metrics,
        "status_counts": {s: int(n) for s, n in df["status"].value_counts().items()},
        "groups": groups,
        "overall": {},
        "config": config or {},
        "seed": 0,
        "package_versions": {},
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    return folder


def fall(ratio, l2, iou=0.9):
    """Metric values of a clip whose object falls at `ratio` × g with centroid error `l2` px (256x256)."""
    return {"l2": l2, "l2_norm": l2 / (256 * np.sqrt(2)), "iou": iou, "accel_fit_x": 0.0,
            "accel_fit_z": -9.81 * ratio, "accel_ratio": ratio}
