"""`python -m newtonbench.demo --out demo` (`make demo`): the whole loop in a few minutes.

1. generate a small test bench: every primitive, ID and OOD, a few clips each;
2. make videos for reference "models" whose physics error is known: the oracle (the bench's own videos)
   and the same scenes re-simulated with gravity too weak (`generate --gravity G`: same seed, so the same
   objects, camera and launch, only g changes);
3. score each with the real scorer;
4. build the leaderboard, print the ranking and where the page is.

The ranking must follow the physics: the oracle first, then the gravities from the closest to 9.81 m/s² to
the farthest. The demo checks it and exits non-zero otherwise, so `make demo` is also an end-to-end test.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import time
from pathlib import Path

import click

from newtonbench.errors import NewtonBenchError
from newtonbench.schema import GRAVITY, PRIMITIVES

ORACLE = "oracle (ground truth)"


def gravity_model(g: float) -> str:
    return f"gravity g={g:g}"


def expected_order(gravities) -> list[str]:
    """The order the physics says: the oracle, then |log(g / 9.81)| from small to large."""
    by_error = sorted(gravities, key=lambda g: (abs(math.log(g / GRAVITY)), -g))
    return [ORACLE] + [gravity_model(g) for g in by_error]


def _stage(i: int, n: int, text: str) -> float:
    click.echo(f"[{i}/{n}] {text}")
    return time.perf_counter()


def run_demo(out: Path, *, clips: int = 2, size: int = 256, frames: int = 32, gravities=(7.0, 4.0), seed: int = 0,
             workers: int = 1, flow: str = "lk", device: str = "auto", progress: bool = True):
    """Run the loop into `out`; returns (leaderboard, written files, seconds per stage)."""
    from newtonbench.generators.dataset_writer import GenerateConfig, generate
    from newtonbench.leaderboard import publish
    from newtonbench.metrics.card import validate_card
    from newtonbench.metrics.scorer import ScoreConfig, score

    out = Path(out).resolve()
    bad = [g for g in gravities if not 0 < g < 100 or math.isclose(g, GRAVITY)]
    if bad:
        raise click.BadParameter(f"gravity {bad[0]!r}; allowed: 0 < g < 100 and g != {GRAVITY}", param_hint="--gravity")
    timings = {}
    common = {"splits": ("test",), "distributions": ("id", "ood"), "num_clips": clips, "seed": seed,
              "width": size, "height": size, "num_frames": frames, "workers": workers}
    n = 4
    t = _stage(1, n, f"generating the bench: {len(PRIMITIVES)} primitives x ID/OOD x {clips} clip(s), "
                     f"{size}x{size}x{frames} -> {out / 'bench'}")
    bench = generate(GenerateConfig(out=out / "bench", **common), progress=progress)
    timings["generate_bench_s"] = time.perf_counter() - t

    t = _stage(2, n, "making the reference models' videos: " + ", ".join(
        [ORACLE + " = the bench's own videos"] + [f"{gravity_model(g)} = the same scenes at g={g:g}" for g in gravities]))
    videos = {ORACLE: bench / "videos"}
    physics = {ORACLE: GRAVITY}
    folders = {ORACLE: "oracle"}
    for g in gravities:
        folder = generate(GenerateConfig(out=out / "models" / f"gravity-{g:g}", gravity=g, **common), progress=progress)
        videos[gravity_model(g)] = folder / "videos"
        physics[gravity_model(g)] = g
        folders[gravity_model(g)] = f"gravity-{g:g}"
    timings["generate_models_s"] = time.perf_counter() - t

    t = _stage(3, n, f"scoring {len(videos)} models against the bench")
    today = _dt.date.today().isoformat()
    results = []
    for name, folder in videos.items():
        card = validate_card({
            "name": name, "parameters": "0 (PyBullet re-simulation)", "resolution": f"{size}x{size}",
            "fps": 16, "frames": frames, "sampling": {"gravity_mps2": physics[name], "seed": seed}, "date": today,
        })
        results.append(out / "results" / folders[name])
        score(ScoreConfig(videos=str(folder), bench=str(bench), out=str(results[-1]), model=name, card=card,
                          flow=flow, device=device, workers=max(1, workers)), progress=progress)
    timings["score_s"] = time.perf_counter() - t

    t = _stage(4, n, f"building the leaderboard -> {out / 'site'}")
    # This run's result folders only: a folder left by an earlier demo with other --gravity values stays out.
    lb, files = publish(results, out / "site", title="NewtonBench demo leaderboard", previews=1, progress=progress)
    timings["leaderboard_s"] = time.perf_counter() - t
    return lb, files, timings


@click.command("demo")
@click.option("--out", default="demo", show_default=True, type=click.Path(file_okay=False), help="Folder for everything.")
@click.option("--clips", type=click.IntRange(1, 1000), default=2, show_default=True,
              help="Clips per primitive and distribution.")
@click.option("--size", type=click.IntRange(32, 1024), default=256, show_default=True, help="Width and height (px).")
@click.option("--frames", type=click.IntRange(8, 512), default=32, show_default=True, help="Frames per clip (16 fps).")
@click.option("--gravity", "gravities", multiple=True, type=click.FloatRange(0, 100, min_open=True, max_open=True),
              default=(7.0, 4.0), show_default=True, help="Gravity of a reference model (repeatable).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=min(2, os.cpu_count() or 1), show_default=True)
@click.option("--flow", type=click.Choice(["lk", "raft", "none"]), default="lk", show_default=True,
              help="Optical flow of the kinematic residual (none: leave that metric out).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--no-progress", is_flag=True)
def main(out, clips, size, frames, gravities, seed, workers, flow, device, no_progress):
    """Generate a small bench, score reference models with known physics errors, publish a leaderboard."""
    start = time.perf_counter()
    try:
        lb, files, timings = run_demo(Path(out), clips=clips, size=size, frames=frames, gravities=gravities, seed=seed,
                                      workers=workers, flow=flow, device=device, progress=not no_progress)
    except NewtonBenchError as e:
        raise click.ClickException(str(e)) from None
    from newtonbench.leaderboard.aggregate import ALL, SCORE

    click.echo("\nranking (Newton score):")
    for rank, m in enumerate(lb.models, start=1):
        c = lb.cell(ALL, ALL, m.name, SCORE)
        ratio = lb.cell(ALL, ALL, m.name, "accel_ratio")
        click.echo(f"  {rank}. {m.name:<24} score {'—' if c is None else f'{c.mean:.3f}'}   accel_ratio "
                   f"{'—' if ratio is None else f'{ratio.mean:.3f}'}")
    click.echo("stage times: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
               + f"; total {time.perf_counter() - start:.1f} s")
    got, want = [m.name for m in lb.models], expected_order(gravities)
    if got != want:
        raise click.ClickException(f"the ranking {got} does not follow the physics {want}")
    click.echo(f"the ranking follows the physics: {' > '.join(want)}")
    click.echo(f"leaderboard page: {files['html']}")


if __name__ == "__main__":
    main()
