"""`newtonbench score`: the click command. Only click and the stdlib at import time (the CLI must
start without torch); the scorer is imported inside the command."""

from __future__ import annotations

import logging
import sys

import click

log = logging.getLogger(__name__)

_PRIMITIVES = ("free_fall", "horizontal_throw", "parabolic_throw", "ramp_down", "ramp_up")
_TABLE_METRICS = ("l2", "iou", "rmse_a", "accel_ratio", "smoothness", "consistency", "kinematic_residual")


def _fmt(x) -> str:
    if x is None:
        return "—"
    ax = abs(x)
    return f"{x:.3g}" if ax and (ax < 1e-2 or ax >= 1e4) else f"{x:.3f}"


def format_table(summary: dict) -> str:
    """Per primitive x distribution means (and the overall row) as an aligned text table."""
    cols = [m for m in _TABLE_METRICS if m in summary["metrics"]]
    header = ["primitive", "dist", "n", "ok"] + cols
    rows = []
    for g in summary["groups"] + [dict(summary["overall"], primitive="overall", distribution="")]:
        rows.append([g["primitive"], g["distribution"], str(g["n"]), str(g["n_ok"])]
                    + [_fmt(g["metrics"][m]["mean"]) for m in cols])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    out = [line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]
    counts = ", ".join(f"{k} {v}" for k, v in summary["status_counts"].items() if v)
    out.append(f"statuses: {counts}")
    return "\n".join(out)


@click.command("score")
@click.argument("videos", type=click.Path(exists=True, file_okay=False))
@click.option("--bench", "bench", required=True, type=click.Path(exists=True, file_okay=False),
              help="The NewtonBench dataset folder (from `newtonbench generate`).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Folder for results.parquet and summary.json.")
@click.option("--model", default=None, help="Model name (required unless the card has a name).")
@click.option("--card", type=click.Path(exists=True, dir_okay=False), default=None,
              help="YAML model card (name, link, parameters, resolution, fps, frames, sampling, date).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True,
              help="Clips per batch of metric kernels.")
@click.option("--workers", type=click.IntRange(0, 256), default=0, show_default=True,
              help="Threads that decode and extract clips (0: one per CPU core, up to 16).")
@click.option("--primitive", "primitives", multiple=True, type=click.Choice(_PRIMITIVES),
              help="Score only these primitives (repeatable).")
@click.option("--split", "splits", multiple=True, type=click.Choice(["train", "test"]))
@click.option("--distribution", "distributions", multiple=True, type=click.Choice(["id", "ood"]))
@click.option("--extractor", type=click.Choice(["plate", "self", "sam2"]), default="plate", show_default=True,
              help="plate: clean background plate; self: background from the video itself; sam2: SAM 2.")
@click.option("--sam2-checkpoint", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Local SAM 2 checkpoint (.pt) for --extractor sam2.")
@click.option("--sam2-config", default=None, help="SAM 2 model config name (default sam2.1 hiera-L).")
@click.option("--flow", type=click.Choice(["lk", "raft", "none"]), default="lk", show_default=True,
              help="Optical flow of the kinematic residual (none: skip that column).")
@click.option("--raft-weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Local torchvision RAFT state dict for --flow raft.")
@click.option("--fps", type=float, default=None,
              help="The model's frame rate: generated frame i at i / FPS seconds, over the files' own timing "
                   "(for files that store another rate than the frames were made at, e.g. GIF).")
@click.option("--pisa-compatible", is_flag=True, help="Also emit PISA's exact pisa_l2 / pisa_chamfer / pisa_iou.")
@click.option("--max-lost-fraction", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Status object_lost when the object is missing in more than this share of the fit window's frames.")
@click.option("--bootstrap", type=click.IntRange(0, 1_000_000), default=1000, show_default=True,
              help="Bootstrap resamples for the 95% confidence intervals (0: none).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option("--strict", is_flag=True, help="Exit non-zero when any clip could not be scored.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def score(videos, bench, out, model, card, device, batch_size, workers, primitives, splits, distributions,
          extractor, sam2_checkpoint, sam2_config, flow, raft_weights, fps, pisa_compatible, max_lost_fraction,
          bootstrap, seed, strict, no_progress):
    """Score a folder of model videos against a NewtonBench dataset.

    VIDEOS holds one video per clip, named <clip_id>.mp4 (or .webm, .avi, .mkv, .mov, .gif, or a
    folder of PNG frames), at any resolution, fps and length.
    """
    from newtonbench.errors import InvalidValueError
    from newtonbench.metrics.card import load_card
    from newtonbench.metrics.extract import ExtractConfig
    from newtonbench.metrics.scorer import ScoreConfig
    from newtonbench.metrics.scorer import score as run_score

    card_data = load_card(card) if card else None
    name = model or (card_data or {}).get("name")
    if not name:
        raise InvalidValueError("no model name: pass --model NAME or a --card with a name field")
    cfg = ScoreConfig(
        videos=videos, bench=bench, out=out, model=name, card=card_data, device=device, batch_size=batch_size,
        workers=workers, primitives=tuple(primitives) or None, splits=tuple(splits) or None,
        distributions=tuple(distributions) or None,
        extractor=ExtractConfig(mode=extractor, sam2_checkpoint=sam2_checkpoint, sam2_config=sam2_config),
        flow=flow, raft_weights=raft_weights, fps=fps, pisa_compatible=pisa_compatible,
        max_lost_fraction=max_lost_fraction, bootstrap=bootstrap, seed=seed, strict=strict,
    )
    result = run_score(cfg, progress=not no_progress)
    click.echo(format_table(result.summary))
    if result.unmatched:
        click.echo(f"warning: {len(result.unmatched)} file(s) matched no clip: "
                   + ", ".join(result.unmatched[:10]) + (" ..." if len(result.unmatched) > 10 else ""), err=True)
    click.echo(f"wrote {result.out / 'results.parquet'} and {result.out / 'summary.json'}")
    if strict and result.n_failed:
        click.echo(f"error: --strict and {result.n_failed} clip(s) could not be scored", err=True)
        sys.exit(1)
