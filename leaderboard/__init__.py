"""Leaderboard: turn `newtonbench score` results into tables (Markdown, CSV, LaTeX) and a static page.

    from newtonbench.leaderboard import publish
    lb, files = publish(["results/model-a", "results/model-b"], "site")
"""

from newtonbench.leaderboard.aggregate import Cell, Leaderboard, Model, build, newton_score
from newtonbench.leaderboard.publish import FORMATS, publish
from newtonbench.leaderboard.runs import (
    DeclaredMetric,
    ResultsError,
    Run,
    check_compatible,
    load_run,
    load_runs,
)

__all__ = [
    "FORMATS",
    "Cell",
    "DeclaredMetric",
    "Leaderboard",
    "Model",
    "ResultsError",
    "Run",
    "build",
    "check_compatible",
    "load_run",
    "load_runs",
    "newton_score",
    "publish",
]
