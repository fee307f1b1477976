"""`newtonbench posttrain` (both modes) and `newtonbench sample` through the real CLI on CPU, for a
tiny random pipeline of every supported family saved with save_pretrained."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from click.testing import CliRunner
from posttrain_fixtures import VARIANTS, cli_ok
from safetensors.torch import load_file

from newtonbench.cli import cli
from newtonbench.posttrain.families import LORA_WEIGHT_NAME, detect_family
from newtonbench.posttrain.loop import load_lora_for_sampling
from newtonbench.video import read_video

TINY = ["--rank", "4", "--lr", "1e-3", "--seed", "1"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def read_log(run_dir):
    with open(run_dir / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def lora(ckpt):
    """{(file, key): tensor} over a checkpoint's LoRA files (one per denoiser; Wan 2.2 A14B has two)."""
    files = sorted(ckpt.glob("pytorch_lora_weights*.safetensors"))
    assert any(f.name == LORA_WEIGHT_NAME for f in files)
    return {(f.name, k): v for f in files for k, v in load_file(str(f)).items()}


def trained(weights) -> bool:
    """Some LoRA B matrix moved off its zero initialisation."""
    return any("lora_B" in k and v.abs().sum() > 0 for (_, k), v in weights.items())


def posttrain(model, bench, out, *extra):
    return run("posttrain", "--model", model, "--bench", bench, "--out", out, *TINY, *extra)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_sft_checkpoints_resume_exactly_and_loads_back(variant, tiny_model, bench, tmp_path):
    model = tiny_model(variant)
    interrupted, straight = tmp_path / "interrupted", tmp_path / "straight"
    common = ("--mode", "sft", "--checkpointing-steps", "1", "--checkpoints-total-limit", "2")
    cli_ok(posttrain(model, bench, interrupted, "--steps", "1", *common))
    assert sorted(p.name for p in interrupted.glob("checkpoint-*")) == ["checkpoint-1"]
    ckpt1 = lora(interrupted / "checkpoint-1")
    assert trained(ckpt1)  # B starts at zero

    # Without --resume an existing run is refused (nothing is overwritten).
    refused = posttrain(model, bench, interrupted, "--steps", "3", *common)
    assert refused.exit_code != 0 and "--resume" in refused.output

    # Resume mid-epoch (2 train clips, batch 1): the loader skips the clip step 1 consumed.
    cli_ok(posttrain(model, bench, interrupted, "--steps", "3", "--resume", *common))
    names = sorted(p.name for p in interrupted.glob("checkpoint-*"))
    assert names == ["checkpoint-2", "checkpoint-3"]  # the limit pruned checkpoint-1
    rows = read_log(interrupted)
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert all(math.isfinite(float(r["loss"])) and float(r["loss"]) > 0 for r in rows)
    ckpt3 = lora(interrupted / "checkpoint-3")
    assert ckpt3.keys() == ckpt1.keys()
    assert any(not torch.equal(ckpt3[k], ckpt1[k]) for k in ckpt3)  # the weights keep changing

    # Resuming reproduces an uninterrupted run: same data order, noise, optimizer state.
    cli_ok(posttrain(model, bench, straight, "--steps", "3", *common))
    ref = lora(straight / "checkpoint-3")
    for k in ref:
        torch.testing.assert_close(ckpt3[k], ref[k], rtol=1e-5, atol=1e-6)

    # The saved LoRA loads back with the pipeline's own load_lora_weights and changes its output.
    from peft.utils import get_peft_model_state_dict
    from PIL import Image

    family = detect_family(model)
    pipe = family.load(model, torch.float32)
    for name in family.denoiser_names(pipe):
        if name != "transformer":
            assert (interrupted / "checkpoint-3" / family.lora_weight_name(name)).is_file()
    h, w = family.resolution(pipe, 32, 32)

    def generate():
        return pipe(
            image=Image.new("RGB", (w, h), (90, 120, 150)),
            prompt="a red ball falls",
            height=h,
            width=w,
            num_frames=9,
            num_inference_steps=2,
            guidance_scale=1.0,
            output_type="pt",
            generator=torch.Generator().manual_seed(0),
            **family.call_kwargs(pipe),
        ).frames

    base = generate()
    load_lora_for_sampling(family, pipe, interrupted / "checkpoint-3")
    for name in family.denoiser_names(pipe):
        loaded = get_peft_model_state_dict(getattr(pipe, name), adapter_name=f"newtonbench_{name}")
        saved = {k: v for (f, k), v in ckpt3.items() if f == family.lora_weight_name(name)}
        assert saved
        for k, v in saved.items():
            torch.testing.assert_close(loaded[k.removeprefix("transformer.")], v)
    assert (generate() - base).abs().max() > 0


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_reward_mode_logs_finite_terms_and_updates_lora(variant, tiny_model, bench, tmp_path):
    out = tmp_path / "run"
    # The default reward spec: kinematic=1,mass=0.5,accel=1.
    cli_ok(
        posttrain(
            tiny_model(variant),
            bench,
            out,
            "--mode",
            "reward",
            "--steps",
            "2",
            "--inference-steps",
            "2",
            "-k",
            "1",
            "--guidance-scale",
            "1",
        )
    )
    rows = read_log(out)
    assert [int(r["step"]) for r in rows] == [1, 2]
    for r in rows:
        terms = {k: float(r[f"reward_{k}"]) for k in ("kinematic", "mass", "accel")}
        assert all(math.isfinite(v) and v >= 0 for v in terms.values())
        assert float(r["reward_total"]) == pytest.approx(
            terms["kinematic"] + 0.5 * terms["mass"] + terms["accel"], rel=1e-5
        )
        assert float(r["time_reward_s"]) > 0 and float(r["time_step_s"]) > 0
    # Only the expert that runs the last K steps gets gradients (Wan 2.2 A14B: transformer_2, low noise).
    assert trained(lora(out / "checkpoint-2"))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_sample_writes_one_scorable_video_per_clip_and_resumes(variant, tiny_model, bench, tmp_path):
    model = tiny_model(variant)
    run_dir, videos = tmp_path / "run", tmp_path / "videos"
    cli_ok(posttrain(model, bench, run_dir, "--mode", "sft", "--steps", "1"))
    args = (
        "sample",
        "--model",
        model,
        "--bench",
        bench,
        "--out",
        videos,
        "--lora",
        run_dir,
        "--inference-steps",
        "2",
    )
    first = run(*args)
    cli_ok(first)
    assert "wrote 2, skipped 0" in first.output
    files = sorted(p.stem for p in videos.iterdir())
    assert files == ["free_fall-test-id-000000", "free_fall-test-id-000001"]
    for f in files:
        video = read_video(videos / f"{f}.mp4")
        assert video.frames.shape == (9, 32, 32, 3)  # the bench's frame count and resolution
        assert video.fps == pytest.approx(8.0)
    again = run(*args, "--split", "test", "--split", "train")
    cli_ok(again)
    assert "wrote 2, skipped 2" in again.output  # existing test videos skipped, train clips added

    # `score` takes them as they are: every test clip's video is found and decoded.
    import pandas as pd

    cli_ok(
        run(
            "score",
            videos,
            "--bench",
            bench,
            "--out",
            tmp_path / "results",
            "--model",
            "tiny",
            "--split",
            "test",
            "--bootstrap",
            "0",
            "--no-progress",
        )
    )
    results = pd.read_parquet(tmp_path / "results" / "results.parquet")
    assert sorted(results["clip_id"]) == files[:2]
    assert not results["status"].isin(["missing_video", "unreadable", "too_few_frames"]).any()


def test_clear_one_line_errors(tiny_model, bench, tmp_path):
    from newtonbench.posttrain import testing

    model = tiny_model("cogvideox")
    cases = {
        "does not exist": posttrain(tmp_path / "nope", bench, tmp_path / "o1"),
        "no train clips": posttrain(
            model, testing.write_tiny_bench(tmp_path / "test_only", splits=("test",)), tmp_path / "o2"
        ),
        "allowed for cogvideox: 4k+1": posttrain(model, bench, tmp_path / "o3", "--frames", "8"),
        "training needs >= 13": posttrain(model, bench, tmp_path / "o8", "--frames", "13"),
        "unknown reward term": posttrain(
            model, bench, tmp_path / "o4", "--mode", "reward", "--reward", "kinematc=1"
        ),
        "not a NewtonBench dataset": posttrain(model, tmp_path, tmp_path / "o5"),
    }
    (tmp_path / "svd").mkdir()
    (tmp_path / "svd" / "model_index.json").write_text('{"_class_name": "StableVideoDiffusionPipeline"}')
    cases["is not supported; supported families: wan"] = posttrain(tmp_path / "svd", bench, tmp_path / "o6")
    if not torch.cuda.is_available():
        cases["no CUDA GPU"] = posttrain(model, bench, tmp_path / "o7", "--device", "cuda")
    for expected, result in cases.items():
        assert result.exit_code != 0, expected
        lines = [ln for ln in result.output.splitlines() if ln.startswith("Error")]
        assert len(lines) == 1, result.output
        assert expected.lower() in lines[0].lower(), (expected, lines[0])
        assert not (tmp_path / "o1").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mode", ["sft", "reward"])
def test_bf16_step_on_cuda(mode, tiny_model, bench, tmp_path):
    out = tmp_path / "run"
    cli_ok(
        posttrain(
            tiny_model("wan2.1"),
            bench,
            out,
            "--mode",
            mode,
            "--steps",
            "1",
            "--device",
            "cuda",
            "--inference-steps",
            "2",
        )
    )
    row = read_log(out)[0]
    assert math.isfinite(float(row["loss"]))
    assert trained(lora(out / "checkpoint-1"))


@pytest.mark.slow
def test_two_processes_ddp_on_cpu(tiny_model, bench, tmp_path):
    """The same loop under torchrun (what `accelerate launch` does on GPUs), two CPU processes over gloo,
    on the hardest case: Wan 2.2's two experts, where all processes must train the same expert."""
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "newtonbench",
        "posttrain",
        "--model",
        str(tiny_model("wan2.2")),
        "--bench",
        str(bench),
        "--out",
        str(out),
        "--mode",
        "sft",
        "--rank",
        "4",
        "--checkpointing-steps",
        "1",
        "--device",
        "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for extra in (["--steps", "1"], ["--steps", "2", "--resume"]):
        proc = subprocess.run(cmd + extra, env=env, capture_output=True, text=True, timeout=240, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = out / "checkpoint-2"
    assert {
        "random_states_0.pkl",
        "random_states_1.pkl",
        "pytorch_lora_weights_transformer_2.safetensors",
    } <= {p.name for p in ckpt.iterdir()}
    rows = read_log(out)
    assert [int(r["step"]) for r in rows] == [1, 2]
    assert all(math.isfinite(float(r["loss"])) for r in rows)


def test_reward_mode_can_start_from_the_sft_lora(tiny_model, bench, tmp_path):
    model = tiny_model("cogvideox")
    cli_ok(posttrain(model, bench, tmp_path / "sft", "--mode", "sft", "--steps", "1"))
    reward_args = (
        "--mode",
        "reward",
        "--init-lora",
        tmp_path / "sft",
        "--steps",
        "1",
        "--inference-steps",
        "2",
    )
    # A tiny learning rate: the reward run's first checkpoint is the SFT LoRA to within ~1e-9.
    cli_ok(posttrain(model, bench, tmp_path / "reward", *reward_args, "--lr", "1e-9"))
    sft, reward = lora(tmp_path / "sft" / "checkpoint-1"), lora(tmp_path / "reward" / "checkpoint-1")
    assert trained(sft)
    for k in sft:
        torch.testing.assert_close(reward[k], sft[k], rtol=0, atol=1e-6)
    mismatch = posttrain(model, bench, tmp_path / "reward8", *reward_args, "--rank", "8")
    assert mismatch.exit_code != 0 and "pass --rank 4 --lora-alpha 4" in mismatch.output
