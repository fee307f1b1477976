"""`newtonbench generate` and `newtonbench validate`. Only click at import time: the heavy modules
(pybullet, numpy-heavy generators) load inside the commands, so `newtonbench --help` stays fast."""

from __future__ import annotations

import sys

import click

from newtonbench.errors import UnknownNameError

PRIMITIVE_NAMES = ("free_fall", "horizontal_throw", "parabolic_throw", "ramp_down", "ramp_up")


def _expand(value: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(allowed) if value == "all" else (value,)


class _PrimitiveType(click.ParamType):
    """Primitive names with a did-you-mean suggestion (click.Choice gives none)."""

    name = "primitive"

    def convert(self, value, param, ctx):
        if value == "all" or value in PRIMITIVE_NAMES:
            return value
        # The registry's one did-you-mean message, raised as click's usage error.
        self.fail(str(UnknownNameError("primitive", value, ("all", *PRIMITIVE_NAMES))), param, ctx)


@click.command()
@click.option("--primitive", "-p", type=_PrimitiveType(), default="all", show_default=True,
              help=f"all, or one of: {', '.join(PRIMITIVE_NAMES)}.")
@click.option("--split", type=click.Choice(["train", "test", "all"]), default="all", show_default=True)
@click.option("--distribution", type=click.Choice(["id", "ood", "all"]), default="all", show_default=True,
              help="OOD clips exist only in the test split.")
@click.option("--num-clips", "-n", type=click.IntRange(min=1), default=8, show_default=True,
              help="Clips per (primitive, split, distribution).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--out", "-o", type=click.Path(path_type=str), required=True, help="Dataset folder (created or resumed).")
@click.option("--workers", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes; the output is identical for any number.")
@click.option("--renderer", type=click.Choice(["tiny", "egl"]), default="tiny", show_default=True,
              help="tiny: PyBullet's CPU TinyRenderer; egl: PyBullet's GPU EGL plugin.")
@click.option("--width", type=click.IntRange(min=2), default=256, show_default=True)
@click.option("--height", type=click.IntRange(min=2), default=256, show_default=True)
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=16.0, show_default=True)
@click.option("--num-frames", type=click.IntRange(min=3), default=32, show_default=True)
@click.option("--gravity", type=click.FloatRange(min=0, min_open=True, max=100), default=9.81, show_default=True,
              help="Override g (m/s^2) without changing any other draw: counterfactual clips of the same scenes.")
@click.option("--object", "object_name", default=None, help="Use this object for every clip (default: the split's pool).")
@click.option("--preset", type=click.Choice(["newtonbench-60k"]), default=None,
              help="newtonbench-60k: per primitive 10,000 train (ID) and 2,000 test (1,000 ID + 1,000 OOD) clips; "
                   "overrides --num-clips.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def generate(primitive, split, distribution, num_clips, seed, out, workers, renderer, width, height, fps, num_frames,
             gravity, object_name, preset, no_progress):
    """Simulate and render NewtonBench clips with ground truth into OUT."""
    from newtonbench.generators.dataset_writer import GenerateConfig
    from newtonbench.generators.dataset_writer import generate as run
    from newtonbench.schema import DISTRIBUTIONS, SPLITS

    config = GenerateConfig(
        out=out, primitives=_expand(primitive, PRIMITIVE_NAMES), splits=_expand(split, SPLITS),
        distributions=_expand(distribution, DISTRIBUTIONS), num_clips=num_clips, seed=seed, width=width,
        height=height, fps=fps, num_frames=num_frames, workers=workers, renderer=renderer, gravity=gravity,
        object_name=object_name, preset=preset,
    )
    path = run(config, progress=not no_progress)
    click.echo(f"wrote {len(config.tasks())} clips to {path}")


@click.command()
@click.argument("data", type=click.Path(path_type=str))
@click.option("--no-files", is_flag=True, help="Skip decoding videos, images and masks (tables and physics only).")
@click.option("--no-progress", is_flag=True)
def validate(data, no_files, no_progress):
    """Check a generated dataset DATA: schema, counts, files and physics. Exit 1 on any failure."""
    from newtonbench.generators.validate import validate as run

    report = run(data, check_files=not no_files, progress=not no_progress)
    click.echo(report.table())
    if not report.ok:
        sys.exit(1)
