"""The `newtonbench` command. Verbs are imported lazily: `newtonbench --help` imports neither torch
nor pybullet, so the CLI starts fast. Each verb lives beside its package (generators/cli.py, ...)."""

from __future__ import annotations

import importlib
import logging

import click

from newtonbench import __version__
from newtonbench.errors import NewtonBenchError

# verb -> (module:attribute, one-line help shown by `newtonbench --help` without importing it)
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("newtonbench.generators.cli:generate", "Simulate and render NewtonBench clips with ground truth."),
    "validate": ("newtonbench.generators.cli:validate", "Check a generated dataset: schema, files and physics."),
    "score": ("newtonbench.metrics.cli:score", "Score a folder of model videos against a NewtonBench dataset."),
    "posttrain": ("newtonbench.posttrain.cli:posttrain", "Fine-tune a diffusers image-to-video model (SFT or reward)."),
    "sample": ("newtonbench.posttrain.cli:sample", "Generate one video per bench clip with a (LoRA-tuned) model."),
    "leaderboard": ("newtonbench.leaderboard.cli:leaderboard", "Build tables and a static page from score results."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, text) in COMMANDS.items()])

    def invoke(self, ctx):
        # A user's mistake is one line and a non-zero exit, never a traceback.
        try:
            return super().invoke(ctx)
        except NewtonBenchError as e:
            raise click.ClickException(str(e)) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="newtonbench")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """newtonbench: does my video model obey Newton's laws?"""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main() -> None:
    cli(prog_name="newtonbench")
