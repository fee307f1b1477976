"""Generation throughput and memory (`make bench`).

- clips per second per core at 256x256x32 with the default renderer (TinyRenderer), one process,
  with the time split into simulation, rendering, H.264 encoding and the other writes;
- the named baseline, measured in the same run: drawing the whole scene every frame instead of
  compositing the object over a once-drawn background plate (renderers/base.py);
- peak RSS of `generate` for N and 2N clips, each in a fresh subprocess: flat memory means the
  second is not larger than the first by more than noise;
- the projected wall time of NewtonBench-60K on a 2-core machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_CLIPS_PER_S_PER_CORE = 4.0
CLIPS_60K = 60_000

_RSS_SCRIPT = """
import json, resource, sys
from newtonbench.generators.dataset_writer import GenerateConfig, generate
generate(GenerateConfig(out=sys.argv[1], num_clips=int(sys.argv[2]), primitives=("free_fall", "ramp_up"),
                        splits=("test",), distributions=("id",)), progress=False)
print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _throughput(n_per_primitive: int, full_scene: bool) -> dict:
    from newtonbench.generators.dataset_writer import GenerateConfig, build_clip, write_clip
    from newtonbench.generators.renderers import get_renderer
    from newtonbench.schema import PRIMITIVES

    renderer = get_renderer("tiny")
    if full_scene:
        plain = renderer.render
        renderer.render = lambda *a, **k: plain(*a, full_scene=True, **k)
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = GenerateConfig(out=Path(tmp))
        t0, c0 = time.perf_counter(), time.process_time()
        n = 0
        for p in PRIMITIVES:
            for i in range(n_per_primitive):
                clip = build_clip(cfg, p, "test", "id" if i % 2 == 0 else "ood", i, renderer=renderer, timings=timings)
                write_clip(cfg, clip, timings=timings)
                n += 1
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"clips": n, "clips_per_s_per_core": n / wall, "clips_per_cpu_s": n / cpu,
            "ms_per_clip": {k: 1000 * v / n for k, v in sorted(timings.items())} | {"total": 1000 * wall / n}}


def _peak_rss(n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(Path(tmp) / "DATA"), str(n)],
                             check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_rss_mib"]


def run(n_per_primitive: int = 8, rss_clips: int = 40) -> dict:
    composite = _throughput(n_per_primitive, full_scene=False)
    full = _throughput(max(2, n_per_primitive // 4), full_scene=True)
    rate = composite["clips_per_s_per_core"]
    cpu_rate = composite["clips_per_cpu_s"]
    rss_n, rss_2n = _peak_rss(rss_clips), _peak_rss(2 * rss_clips)
    return {
        "resolution": "256x256x32 @ 16 fps, renderer tiny, 1 process",
        # Wall-clock rate of one process, and the same per second of its CPU time: on a machine
        # shared with other work the first understates what a dedicated core does.
        "clips_per_s_per_core": round(rate, 2),
        "clips_per_cpu_second": round(cpu_rate, 2),
        "target_clips_per_s_per_core": TARGET_CLIPS_PER_S_PER_CORE,
        "ratio_to_target": round(rate / TARGET_CLIPS_PER_S_PER_CORE, 2),
        "ratio_to_target_cpu": round(cpu_rate / TARGET_CLIPS_PER_S_PER_CORE, 2),
        "ms_per_clip": {k: round(v, 1) for k, v in composite["ms_per_clip"].items()},
        "baseline_full_scene_clips_per_s_per_core": round(full["clips_per_s_per_core"], 2),
        "baseline_full_scene_clips_per_cpu_second": round(full["clips_per_cpu_s"], 2),
        "speedup_vs_full_scene_rendering": round(rate / full["clips_per_s_per_core"], 2),
        "speedup_vs_full_scene_rendering_cpu": round(cpu_rate / full["clips_per_cpu_s"], 2),
        "newtonbench_60k_hours_on_2_cores": round(CLIPS_60K / (2 * rate) / 3600, 2),
        "newtonbench_60k_hours_on_2_dedicated_cores": round(CLIPS_60K / (2 * cpu_rate) / 3600, 2),
        f"peak_rss_mib_{2 * rss_clips}_clips": round(rss_n, 1),
        f"peak_rss_mib_{4 * rss_clips}_clips": round(rss_2n, 1),
        "rss_ratio_2n_over_n": round(rss_2n / rss_n, 3),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
