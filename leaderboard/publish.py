"""One call from score results to every output: leaderboard.md, .csv, .tex, index.html and previews."""

from __future__ import annotations

import logging
from pathlib import Path

from newtonbench.atomic import write_text
from newtonbench.errors import InvalidValueError
from newtonbench.leaderboard.aggregate import Leaderboard, build
from newtonbench.leaderboard.runs import load_runs
from newtonbench.leaderboard.tables import standard_tables, write_csv, write_latex, write_markdown

log = logging.getLogger(__name__)

FORMATS = ("md", "csv", "tex", "html")
FILES = {"md": "leaderboard.md", "csv": "leaderboard.csv", "tex": "leaderboard.tex", "html": "index.html"}


def publish(
    results,
    out: str | Path,
    *,
    title: str = "NewtonBench leaderboard",
    formats=FORMATS,
    split: str = "test",
    fields=None,
    previews: int = 1,
    progress: bool = True,
) -> tuple[Leaderboard, dict[str, Path]]:
    """Read the result folders `results` (each written by `newtonbench score`, or folders holding some),
    and write the requested formats into `out`. Returns the leaderboard and the paths written.

    fields: the metric columns of the tables (default tables.HEADLINE); previews: example clips per
    primitive on the page (0: none).
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise InvalidValueError(f"format {bad[0]!r} is unknown; allowed: {', '.join(FORMATS)}")
    runs = load_runs(results)
    lb = build(runs, split=split)
    if fields is not None:
        unknown = [f for f in fields if f not in lb.metrics and f not in ("score", "coverage")]
        if unknown:
            raise InvalidValueError(
                f"metric {unknown[0]!r} is not in the results; allowed: score, coverage, {', '.join(lb.metrics)}"
            )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tables = standard_tables(lb, fields)
    written = {}
    if "md" in formats:
        write_text(out / FILES["md"], write_markdown(lb, tables, title))
        written["md"] = out / FILES["md"]
    if "csv" in formats:
        write_text(out / FILES["csv"], write_csv(lb))
        written["csv"] = out / FILES["csv"]
    if "tex" in formats:
        write_text(out / FILES["tex"], write_latex(lb, tables, title))
        written["tex"] = out / FILES["tex"]
    if "html" in formats:
        from newtonbench.leaderboard.previews import make_previews
        from newtonbench.leaderboard.site import render_page

        examples = make_previews(lb, runs, out, per_primitive=previews, progress=progress)
        write_text(out / FILES["html"], render_page(lb, title, examples))
        written["html"] = out / FILES["html"]
    return lb, written
