"""`newtonbench leaderboard RESULTS... --out SITE`. Only click at module level: the CLI starts fast."""

from __future__ import annotations

import click

FORMAT_CHOICES = ("md", "csv", "tex", "html")


@click.command("leaderboard")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Folder to write the site and tables into.")
@click.option("--title", default="NewtonBench leaderboard", show_default=True, help="Page and table title.")
@click.option(
    "--format", "formats", multiple=True, type=click.Choice(FORMAT_CHOICES),
    help="Outputs to write (repeatable); default all: leaderboard.md, .csv, .tex and index.html.",
)
@click.option("--split", type=click.Choice(["test", "train", "all"]), default="test", show_default=True,
              help="Which clips of the results to rank.")
@click.option("--metrics", "metrics", default=None, metavar="A,B,...",
              help="Columns of the tables (default: score, coverage and the headline metrics).")
@click.option("--previews", type=click.IntRange(0, 20), default=1, show_default=True,
              help="Example clips per primitive shown as looping previews on the page (0: none).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def leaderboard(results, out, title, formats, split, metrics, previews, no_progress):
    """Build tables and a static page from score results.

    RESULTS are folders written by `newtonbench score` (or folders holding some, searched recursively).
    Runs of the same model are reported as mean ± std over runs; results of different benchmark or metric
    versions are refused.
    """
    from newtonbench.leaderboard.aggregate import ALL, SCORE
    from newtonbench.leaderboard.publish import publish

    fields = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    lb, written = publish(
        results, out, title=title, formats=formats or FORMAT_CHOICES, split=split, fields=fields,
        previews=previews, progress=not no_progress,
    )
    for rank, m in enumerate(lb.models, start=1):
        c = lb.cell(ALL, ALL, m.name, SCORE)
        score = "—" if c is None else (f"{c.mean:.3f}" if c.std is None else f"{c.mean:.3f} ± {c.std:.3f}")
        click.echo(f"{rank:>3}  {score:>15}  {m.name}  ({len(m.runs)} run{'s' if len(m.runs) > 1 else ''})")
    for path in written.values():
        click.echo(f"wrote {path}")
