"""Post-training cost (`make bench`).

- The reward kernels' share of one reward-mode step on the tiny test models (Wan 2.1, CogVideoX,
  LTX-Video) at posttrain's default 20
  denoising steps (target: < 10%), and at 4 steps as a stress case: a step
  is sample (all denoising steps, the last K with gradients) + VAE decode + reward + backward + AdamW,
  i.e. the named baseline, one full step, measured in the same run; the reward part is the reward's
  forward AND backward on the step's own decoded frames, timed on its own.
- Peak RSS of that step's process (each family in a fresh subprocess, resource.getrusage).
- With CUDA: seconds and peak GPU memory of one bf16 reward-mode step at 256x256x33 (the bench's
  256x256x32 rounded up to the 4k+1 frames the VAEs take) on a tiny Wan 2.1 pipeline, plus the same share.

Tiny models run on one torch thread: on a shared 2-core machine two threads per microsecond kernel
were measured 27x slower (tests/posttrain/conftest.py).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_REWARD_SHARE = 0.10
REWARD_SPEC = "kinematic=1,mass=0.5,accel=1"  # posttrain's default

_WORKER = """
import json, resource, sys
from benchmarks.bench_posttrain import measure
out = measure(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6],
              int(sys.argv[7]))
out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(out))
"""


def measure(
    family_variant: str,
    root: str,
    size: int,
    frames: int,
    repeats: int,
    device: str,
    inference_steps: int = 20,
) -> dict:
    """Time `repeats` reward-mode steps (after one warm-up) of a tiny pipeline built under root."""
    import torch
    from torch.utils.data import default_collate

    from newtonbench.dataset import open_dataset
    from newtonbench.metrics.rewards import RewardContext, build_reward
    from newtonbench.posttrain import testing
    from newtonbench.posttrain.config import TrainConfig
    from newtonbench.posttrain.data import BenchClips
    from newtonbench.posttrain.families import detect_family
    from newtonbench.posttrain.loop import add_lora, reward_step

    torch.set_num_threads(1)
    root = Path(root)
    bench = testing.write_tiny_bench(root / "bench", size=size, frames=frames, clips=1, splits=("train",))
    model = testing.TINY_BUILDERS[family_variant](root / family_variant, size=size)
    family = detect_family(model)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    pipe = family.load(model, dtype).to(device)
    config = TrainConfig(
        model=str(model),
        bench=str(bench),
        out=str(root / "run"),
        mode="reward",
        inference_steps=inference_steps,
        backprop_steps=1,
        rank=8,
    )
    nets = add_lora(family, pipe, config)
    params = [p for net in nets for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    h, w = family.resolution(pipe, size, size)
    num_frames = family.frames_at_most(frames)
    batch = default_collate([BenchClips(open_dataset(bench), h, w, num_frames, with_video=True)[0]])
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    reward = build_reward(REWARD_SPEC)
    guidance = family.default_guidance

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    steps, rewards = [], []
    for i in range(repeats + 1):
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        sync()
        t0 = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss, _ = reward_step(
                family,
                pipe,
                nets,
                batch,
                config,
                num_frames,
                torch.Generator().manual_seed(i),
                reward,
                guidance,
            )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        t1 = time.perf_counter()
        peak_gpu = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
        # The reward alone, forward + backward, on frames of this very step's shape and content.
        with torch.no_grad():
            cond = family.encode(
                pipe,
                batch["first_frame"],
                list(batch["prompt"]),
                num_frames,
                1.0,
                torch.Generator().manual_seed(i),
            )
            frames = family.decode(
                pipe, family.generate(pipe, nets, cond, 1, 0, torch.Generator().manual_seed(i))
            )
        frames = frames.float().requires_grad_(True)
        ctx = RewardContext(
            first_frame=batch["first_frame"].float(),
            first_mask=batch["first_mask"].float(),
            background=batch["background"].float(),
            reference=batch["video"].float(),
        )
        sync()
        t2 = time.perf_counter()
        reward(frames, ctx).total.mean().backward()
        sync()
        t3 = time.perf_counter()
        if i:  # the first step warms caches and allocators
            steps.append(t1 - t0)
            rewards.append(t3 - t2)
    step_s, reward_s = statistics.median(steps), statistics.median(rewards)
    out = {
        "frames": list(frames.shape),
        "step_s": step_s,
        "reward_fwd_bwd_s": reward_s,
        "reward_share_of_step": reward_s / step_s,
        "inference_steps": config.inference_steps,
        "backprop_steps": config.backprop_steps,
        "guidance_scale": guidance,
        "torch_threads": 1,
    }
    if peak_gpu is not None:
        out["peak_gpu_gib"] = peak_gpu
    return out


def _subprocess(
    variant: str, size: int, frames: int, repeats: int, device: str, inference_steps: int
) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        args = [variant, tmp, str(size), str(frames), str(repeats), device, str(inference_steps)]
        proc = subprocess.run(
            [sys.executable, "-c", _WORKER, *args],
            check=False,
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"bench worker {variant} failed:\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def run() -> dict:
    import torch

    out: dict = {
        "reward_spec": REWARD_SPEC,
        "target_reward_share": TARGET_REWARD_SHARE,
        "baseline": "one full reward-mode step (sample + decode + reward + backward + AdamW), same run",
    }
    # At posttrain's default 20 denoising steps (the target), and at 4 (a cheap-sampling stress case).
    for variant in ("wan", "cogvideox", "ltx"):
        for steps in (20, 4):
            r = _subprocess(variant, 32, 9, 5, "cpu", steps)
            out[f"cpu_tiny_{variant}_32x32x9_{steps}steps"] = r
            out[f"reward_share_{variant}_{steps}steps"] = round(r["reward_share_of_step"], 4)
        out[f"reward_share_{variant}_meets_target"] = (
            out[f"reward_share_{variant}_20steps"] < TARGET_REWARD_SHARE
        )
    if torch.cuda.is_available():
        r = _subprocess("wan", 256, 32, 3, "cuda", 20)
        out["gpu_tiny_wan_256x256x33"] = r
        out["gpu_step_s"], out["gpu_peak_gib"] = r["step_s"], r.get("peak_gpu_gib")
    else:
        out["gpu"] = "no CUDA device: GPU step time and memory not measured"
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
