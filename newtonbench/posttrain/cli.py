"""`newtonbench posttrain` and `newtonbench sample`. Only click at import time: torch, diffusers and
accelerate are imported inside the commands, so `newtonbench --help` stays fast."""

from __future__ import annotations

import json

import click

from newtonbench.errors import InvalidValueError


def _parse_options(pairs: tuple[str, ...]) -> dict:
    """KEY=VALUE pairs; VALUE parsed as JSON when it is (numbers, true/false), else kept as a string."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidValueError(f"--reward-option {pair!r}; allowed: KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


# Options shared by `posttrain` and `sample`, defined once.
_model = click.option(
    "--model",
    required=True,
    type=click.Path(file_okay=False),
    metavar="PATH|REPO_ID",
    help="Local diffusers image-to-video pipeline folder, or a repo id in the local Hugging Face cache.",
)
_height = click.option(
    "--height", type=click.IntRange(16, 4096), default=None, help="[default: the bench's, on the model's grid]"
)
_width = click.option(
    "--width", type=click.IntRange(16, 4096), default=None, help="[default: the bench's, on the model's grid]"
)
_seed = click.option("--seed", type=int, default=0, show_default=True)
_device = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)


@click.command("posttrain")
@_model
@click.option(
    "--bench",
    required=True,
    type=click.Path(file_okay=False),
    help="NewtonBench dataset (its train split is used).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Run folder: checkpoint-N/, log.csv, logs/.",
)
@click.option(
    "--mode",
    type=click.Choice(["sft", "reward"]),
    default="sft",
    show_default=True,
    help="sft: the model's denoising loss on train clips; reward: backprop a reward through the last K steps.",
)
@click.option(
    "--reward",
    "reward_spec",
    default="kinematic=1,mass=0.5,accel=1",
    show_default=True,
    help="Reward mode: weighted penalty terms NAME=WEIGHT, minimised (see the README, Physics rewards).",
)
@click.option(
    "--reward-option", multiple=True, metavar="KEY=VALUE", help="Keyword option of build_reward (repeatable)."
)
@click.option(
    "--init-lora",
    type=click.Path(),
    default=None,
    help="Start from this run's LoRA (RUN or RUN/checkpoint-N), e.g. reward mode on top of the SFT run.",
)
@click.option("--rank", type=click.IntRange(1, 1024), default=16, show_default=True, help="LoRA rank.")
@click.option("--lora-alpha", type=click.IntRange(1), default=None, help="LoRA alpha [default: rank].")
@click.option(
    "--learning-rate", "--lr", type=click.FloatRange(0, 1, min_open=True), default=1e-4, show_default=True
)
@click.option("--steps", type=click.IntRange(1), default=1000, show_default=True, help="Optimizer steps.")
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Clips per process per micro-batch.",
)
@click.option("--gradient-accumulation", type=click.IntRange(1), default=1, show_default=True)
@_height
@_width
@click.option(
    "--frames",
    type=click.IntRange(1, 1024),
    default=None,
    help="4k+1 frames [default: the most the clips hold].",
)
@click.option(
    "--inference-steps",
    type=click.IntRange(1, 1000),
    default=20,
    show_default=True,
    help="Reward mode: denoising steps.",
)
@click.option(
    "--backprop-steps",
    "-k",
    type=click.IntRange(1, 1000),
    default=1,
    show_default=True,
    help="Reward mode: K, the last K denoising steps keep gradients (DRaFT-K).",
)
@click.option(
    "--guidance-scale",
    type=click.FloatRange(1.0, 50.0),
    default=None,
    help="Reward mode CFG [default: the family's].",
)
@click.option("--max-grad-norm", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True)
@_seed
@_device
@click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=True, show_default=True)
@click.option(
    "--checkpointing-steps",
    type=click.IntRange(1),
    default=500,
    show_default=True,
    help="Checkpoint every N steps.",
)
@click.option(
    "--checkpoints-total-limit",
    type=click.IntRange(1),
    default=3,
    show_default=True,
    help="Keep the last N checkpoints.",
)
@click.option("--primitive", "primitives", multiple=True, help="Train only on these primitives (repeatable).")
@click.option("--resume", is_flag=True, help="Continue from the latest checkpoint in --out.")
def posttrain(
    model,
    bench,
    out,
    mode,
    reward_spec,
    reward_option,
    init_lora,
    rank,
    lora_alpha,
    learning_rate,
    steps,
    batch_size,
    gradient_accumulation,
    height,
    width,
    frames,
    inference_steps,
    backprop_steps,
    guidance_scale,
    max_grad_norm,
    seed,
    device,
    gradient_checkpointing,
    checkpointing_steps,
    checkpoints_total_limit,
    primitives,
    resume,
):
    """Fine-tune a diffusers image-to-video model with LoRA: SFT on the bench's train clips, or reward
    fine-tuning through the last K denoising steps. Run on several GPUs with `accelerate launch`."""
    from newtonbench.posttrain.config import TrainConfig
    from newtonbench.posttrain.loop import train

    config = TrainConfig(
        model=model,
        bench=bench,
        out=out,
        mode=mode,
        reward=reward_spec,
        reward_options=_parse_options(reward_option),
        init_lora=init_lora,
        rank=rank,
        lora_alpha=lora_alpha,
        learning_rate=learning_rate,
        steps=steps,
        batch_size=batch_size,
        gradient_accumulation=gradient_accumulation,
        height=height,
        width=width,
        frames=frames,
        inference_steps=inference_steps,
        backprop_steps=backprop_steps,
        guidance_scale=guidance_scale,
        max_grad_norm=max_grad_norm,
        seed=seed,
        device=device,
        gradient_checkpointing=gradient_checkpointing,
        checkpointing_steps=checkpointing_steps,
        checkpoints_total_limit=checkpoints_total_limit,
        primitives=primitives,
        resume=resume,
    )
    summary = train(config)
    if summary["is_main_process"]:
        click.echo(f"step {summary['step']}: {summary['checkpoint']}")


@click.command("sample")
@_model
@click.option(
    "--lora", type=click.Path(), default=None, help="RUN folder (latest checkpoint) or RUN/checkpoint-N."
)
@click.option("--bench", required=True, type=click.Path(file_okay=False), help="NewtonBench dataset.")
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Folder for <clip_id>.mp4 files."
)
@click.option(
    "--split",
    "splits",
    multiple=True,
    type=click.Choice(["train", "test"]),
    default=("test",),
    show_default=True,
)
@click.option("--primitive", "primitives", multiple=True, help="Only these primitives (repeatable).")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most N clips (in clip_id order).")
@click.option("--inference-steps", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option(
    "--guidance-scale", type=click.FloatRange(1.0, 50.0), default=None, help="[default: the family's]"
)
@_height
@_width
@_seed
@_device
def sample(
    model,
    lora,
    bench,
    out,
    splits,
    primitives,
    limit,
    inference_steps,
    guidance_scale,
    height,
    width,
    seed,
    device,
):
    """Generate one video per bench clip (VIDEOS/<clip_id>.mp4 at the bench's fps and frame count),
    ready for `newtonbench score`. Existing videos are skipped."""
    from newtonbench.posttrain.sample import SampleConfig
    from newtonbench.posttrain.sample import sample as run_sample

    counts = run_sample(
        SampleConfig(
            model=model,
            bench=bench,
            out=out,
            lora=lora,
            splits=splits,
            primitives=primitives,
            limit=limit,
            inference_steps=inference_steps,
            guidance_scale=guidance_scale,
            height=height,
            width=width,
            seed=seed,
            device=device,
        )
    )
    click.echo(
        f"wrote {counts['written']}, skipped {counts['skipped']} existing, of {counts['total']} clips -> {out}"
    )
