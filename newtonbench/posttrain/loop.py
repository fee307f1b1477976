"""The post-training loop: one accelerate loop, readable top to bottom (diffusers' training examples).

    prepare -> [accumulate: sft loss | reward through the last K denoising steps] -> step
            -> log (CSV, TensorBoard) -> checkpoint every N steps (keep the last few) -> resume

Runs on CPU, on one GPU, or on several with `accelerate launch -m newtonbench.cli posttrain ...`.
Only LoRA weights train; everything else is frozen. A checkpoint RUN/checkpoint-N/ holds the LoRA
weights in the pipeline's own `load_lora_weights` format, accelerate's optimizer / scheduler / RNG
state and the TrainConfig (config.json).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
import shutil
import time
from pathlib import Path

from newtonbench.errors import DeviceUnavailableError, InvalidValueError, NewtonBenchError
from newtonbench.posttrain.config import TrainConfig
from newtonbench.posttrain.families import VideoFamily, detect_family, require_train_deps, resolve_model_dir

logger = logging.getLogger(__name__)


class TrainingDivergedError(NewtonBenchError):
    """The loss became NaN or infinite."""


CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
LOG_NAME = "log.csv"
STATE_NAME = "trainer_state.json"  # step, epoch and batches consumed in it
ADAPTER = "default"  # peft's adapter name inside the training model


# --- checkpoints -----------------------------------------------------------------------------------
def list_checkpoints(run: str | Path) -> list[Path]:
    """RUN/checkpoint-N folders that are complete (config.json written last), oldest first."""
    run = Path(run)
    if not run.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run.iterdir() if (m := CHECKPOINT_RE.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found) if (p / "config.json").is_file()]


def checkpoint_step(path: str | Path) -> int:
    m = CHECKPOINT_RE.match(Path(path).name)
    if not m:
        raise InvalidValueError(f"{path} is not a checkpoint folder; allowed: RUN/checkpoint-<step>")
    return int(m.group(1))


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, or the latest complete checkpoint of a run folder."""
    path = Path(path)
    if CHECKPOINT_RE.match(path.name) and (path / "config.json").is_file():
        return path
    ckpts = list_checkpoints(path)
    if not ckpts:
        raise InvalidValueError(
            f"{path}: no checkpoint; allowed: a RUN folder of `posttrain` or RUN/checkpoint-<step>"
        )
    return ckpts[-1]


def _prune_checkpoints(run: Path, keep: int | None) -> None:
    """Leave room for one more checkpoint within the limit (diffusers' checkpoints_total_limit)."""
    if keep is None:
        return
    ckpts = sorted(
        (checkpoint_step(p), p) for p in run.iterdir() if CHECKPOINT_RE.match(p.name) and p.is_dir()
    )
    for _, p in ckpts[: max(0, len(ckpts) - (keep - 1))]:
        logger.info("removing old checkpoint %s", p)
        shutil.rmtree(p)


# --- model set-up ----------------------------------------------------------------------------------
def resolve_device(device: str) -> str:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            "device='cuda' was asked for but torch sees no CUDA GPU; use --device cpu or auto"
        )
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def add_lora(family: VideoFamily, pipe, config: TrainConfig) -> list:
    """Freeze the pipeline, add one LoRA adapter per denoiser (transformer[, transformer_2]).

    LoRA parameters are kept in float32 even when the frozen weights are bf16 (stable Adam updates).
    """
    import torch
    from peft import LoraConfig

    for name in ("text_encoder", "image_encoder", "vae", "transformer", "transformer_2"):
        module = getattr(pipe, name, None)
        if isinstance(module, torch.nn.Module):
            module.requires_grad_(False)
    nets = []
    for name in family.denoiser_names(pipe):
        net = getattr(pipe, name)
        net.add_adapter(
            LoraConfig(
                r=config.rank,
                lora_alpha=config.alpha,
                init_lora_weights=True,
                target_modules=list(family.lora_target_modules),
            ),
            adapter_name=ADAPTER,
        )
        for p in net.parameters():
            if p.requires_grad:
                p.data = p.data.float()
        if config.gradient_checkpointing:
            net.enable_gradient_checkpointing()
        net.train()
        nets.append(net)
    return nets


def save_lora(family: VideoFamily, pipe, nets, folder: str | Path) -> None:
    """LoRA weights in the format the pipeline's `load_lora_weights` reads (one file per denoiser)."""
    import diffusers
    from peft.utils import get_peft_model_state_dict

    cls = getattr(diffusers, family.pipeline_class)
    for name, net in zip(family.denoiser_names(pipe), nets):
        cls.save_lora_weights(
            str(folder),
            transformer_lora_layers=get_peft_model_state_dict(net, adapter_name=ADAPTER),
            weight_name=family.lora_weight_name(name),
            transformer_lora_adapter_metadata=net.peft_config[ADAPTER].to_dict(),
        )


def load_lora_into_training(family: VideoFamily, pipe, nets, folder: str | Path) -> None:
    """Restore LoRA weights saved by save_lora into the (already adapted) training denoisers."""
    import diffusers
    from diffusers.utils import convert_unet_state_dict_to_peft
    from peft import set_peft_model_state_dict

    cls = getattr(diffusers, family.pipeline_class)
    for name, net in zip(family.denoiser_names(pipe), nets):
        sd = cls.lora_state_dict(str(folder), weight_name=family.lora_weight_name(name))
        sd = sd[0] if isinstance(sd, tuple) else sd
        sd = {k.removeprefix("transformer."): v for k, v in sd.items() if k.startswith("transformer.")}
        result = set_peft_model_state_dict(net, convert_unet_state_dict_to_peft(sd), adapter_name=ADAPTER)
        unexpected = getattr(result, "unexpected_keys", None)
        if unexpected:
            raise InvalidValueError(f"{folder}: LoRA keys that do not fit the model: {unexpected[:3]} ...")


def load_lora_for_sampling(family: VideoFamily, pipe, checkpoint: str | Path) -> None:
    """Load a checkpoint's LoRA with the pipeline's own load_lora_weights (what users do)."""
    checkpoint = Path(checkpoint)
    for name in family.denoiser_names(pipe):
        kwargs = {"load_into_transformer_2": True} if name == "transformer_2" else {}
        pipe.load_lora_weights(
            str(checkpoint),
            weight_name=family.lora_weight_name(name),
            adapter_name=f"newtonbench_{name}",
            **kwargs,
        )


def init_from(family: VideoFamily, pipe, nets, config: TrainConfig) -> Path:
    """Load the LoRA of another run into the fresh adapters; its rank and alpha must match ours."""
    ckpt = resolve_checkpoint(config.init_lora)
    other = TrainConfig.load(ckpt)
    if (other.rank, other.alpha) != (config.rank, config.alpha):
        raise InvalidValueError(
            f"--init-lora {ckpt} has rank {other.rank} and alpha {other.alpha}; this run has rank {config.rank} and"
            f" alpha {config.alpha}: pass --rank {other.rank} --lora-alpha {other.alpha}"
        )
    load_lora_into_training(family, pipe, nets, ckpt)
    logger.info("initialised LoRA from %s", ckpt)
    return ckpt


# --- one training step ------------------------------------------------------------------------------
def sft_step(family, pipe, nets, batch, config, num_frames, generator, shared_generator=None) -> tuple:
    """The model's own denoising loss on a batch of train clips. Returns (loss, logs)."""
    # (CogVideoX's conditioning noises the first frame, as diffusers' training script does.)
    cond = family.sft_conditioning(pipe, batch["first_frame"], list(batch["prompt"]), num_frames, generator)
    loss = family.sft_loss(pipe, nets, batch["video"][:, :num_frames], cond, generator, shared_generator)
    return loss, {}


def reward_step(
    family, pipe, nets, batch, config, num_frames, generator, reward, guidance, shared_generator=None
) -> tuple:
    """Sample from the bench's first frames and prompts, keep gradients through the last K denoising
    steps (DRaFT-K / VADER), decode, and minimise the reward (a penalty: lower is better)."""
    import torch

    from newtonbench.metrics.rewards import RewardContext

    device = family._device(pipe)
    t0 = time.perf_counter()
    cond = family.encode(
        pipe, batch["first_frame"].to(device), list(batch["prompt"]), num_frames, guidance, generator
    )
    latents = family.generate(pipe, nets, cond, config.inference_steps, config.backprop_steps, generator)
    frames = family.decode(pipe, latents)
    t1 = time.perf_counter()
    reference = batch.get("video")  # the ground-truth clip, loaded only when a term needs it (accel)
    context = RewardContext(
        first_frame=batch["first_frame"].to(device, frames.dtype),
        first_mask=batch["first_mask"].to(device, frames.dtype),
        background=batch["background"].to(device, frames.dtype),
        reference=None if reference is None else reference[:, :num_frames].to(device, frames.dtype),
    )
    out = reward(frames, context)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t2 = time.perf_counter()
    logs = {
        "reward_total": out.total.detach().mean().item(),
        "time_sample_s": t1 - t0,
        "time_reward_s": t2 - t1,
    }
    for name, value in out.terms.items():
        logs[f"reward_{name}"] = value.detach().mean().item()
    return out.total.mean(), logs


# --- the loop ----------------------------------------------------------------------------------------
def train(config: TrainConfig) -> dict:
    """Run post-training as configured; returns a summary (final step, last checkpoint, last row)."""
    require_train_deps()
    import torch
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from diffusers.optimization import get_scheduler
    from tqdm.auto import tqdm

    from newtonbench.dataset import open_dataset
    from newtonbench.posttrain.data import BenchClips

    # Every user error (model folder, bench, reward spec, device) surfaces before any model loads.
    family = detect_family(config.model)
    ds = open_dataset(config.bench)
    reward, guidance = None, 1.0
    if config.mode == "reward":
        from newtonbench.metrics.rewards import build_reward

        reward = build_reward(config.reward, **config.reward_options)
        guidance = config.guidance_scale if config.guidance_scale is not None else family.default_guidance
    device = resolve_device(config.device)
    run = Path(config.out)
    try:
        import tensorboard  # noqa: F401

        log_with = "tensorboard"
    except ImportError:
        log_with = None
    accelerator = Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation,
        mixed_precision="bf16" if device == "cuda" else "no",
        cpu=device == "cpu",
        log_with=log_with,
        project_config=ProjectConfiguration(project_dir=str(run), logging_dir=str(run / "logs")),
    )
    set_seed(config.seed)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32

    pipe = family.load(resolve_model_dir(config.model), dtype)
    pipe.to(accelerator.device)
    train_rows = ds.select(splits=["train"], primitives=list(config.primitives) or None)
    bench_frames = int(train_rows["num_frames"].min()) if len(train_rows) else 0
    bench_h = int(train_rows["height"].iloc[0]) if len(train_rows) else 0
    bench_w = int(train_rows["width"].iloc[0]) if len(train_rows) else 0
    height, width = family.resolution(pipe, bench_h or 16, bench_w or 16, config.height, config.width)
    num_frames = config.frames or family.frames_at_most(max(bench_frames, 1))
    family.check_frames(num_frames)
    needs_video = config.mode == "sft" or "accel" in reward.weights  # accel compares with the true clip
    data = BenchClips(ds, height, width, num_frames, "train", config.primitives, with_video=needs_video)

    nets = add_lora(family, pipe, config)
    if config.init_lora:  # e.g. reward fine-tuning on top of the SFT run (a resumed checkpoint overrides it)
        init_from(family, pipe, nets, config)
    params = [p for net in nets for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=config.learning_rate, betas=(0.9, 0.999), weight_decay=1e-4, eps=1e-8
    )
    lr_scheduler = get_scheduler("constant", optimizer=optimizer)
    sampler = EpochShuffle(len(data), config.seed)
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=config.batch_size,
        sampler=sampler,
        drop_last=len(data) >= config.batch_size,
        num_workers=0,
    )
    prepared = accelerator.prepare(*nets, optimizer, loader, lr_scheduler)
    nets, (optimizer, loader, lr_scheduler) = list(prepared[: len(nets)]), prepared[len(nets) :]

    # accelerate's save_state would write the full transformer weights; as diffusers' LoRA scripts do,
    # save only the LoRA (in load_lora_weights' format) and tell accelerate the models are handled.
    def save_hook(models, weights, output_dir):
        if accelerator.is_main_process:
            save_lora(family, pipe, [accelerator.unwrap_model(n) for n in nets], output_dir)
        while weights:
            weights.pop()

    def load_hook(models, input_dir):
        load_lora_into_training(family, pipe, [accelerator.unwrap_model(n) for n in nets], input_dir)
        while models:
            models.pop()

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)

    global_step, epoch, done_in_epoch = 0, 0, 0
    if config.resume:
        ckpts = list_checkpoints(run)
        if ckpts:
            accelerator.load_state(str(ckpts[-1]))
            global_step = checkpoint_step(ckpts[-1])
            state = json.loads((ckpts[-1] / STATE_NAME).read_text())
            epoch, done_in_epoch = state["epoch"], state["batches_done_in_epoch"]
            logger.info("resumed from %s", ckpts[-1])
        else:
            logger.warning("--resume: no checkpoint in %s; starting from step 0", run)
    elif list_checkpoints(run):
        raise InvalidValueError(
            f"{run} already holds checkpoints; pass --resume to continue or choose a new --out"
        )

    if accelerator.is_main_process:
        run.mkdir(parents=True, exist_ok=True)
        config.save(run)
        if log_with:
            accelerator.init_trackers(
                "newtonbench-posttrain", config={k: str(v) for k, v in config.to_dict().items()}
            )
    log = _CsvLog(run / LOG_NAME, keep_until=global_step) if accelerator.is_main_process else None

    step_fn = sft_step if config.mode == "sft" else reward_step
    extra = () if config.mode == "sft" else (reward, guidance)
    progress = tqdm(
        total=config.steps,
        initial=global_step,
        desc=f"posttrain {config.mode}",
        disable=not accelerator.is_local_main_process,
    )
    window: list[dict] = []
    last_row: dict = {}
    t_step = time.perf_counter()
    while global_step < config.steps:
        # The data order is a function of (seed, epoch) and a resumed run skips the batches its
        # checkpoint had consumed, so resuming reproduces an uninterrupted run exactly.
        # (accelerate's loaders re-seed their sampler from their own epoch counter on every __iter__,
        # so the epoch is set on the loader, and again on the skipping loader, not on the sampler.)
        loader.set_epoch(epoch)
        batches = loader
        if done_in_epoch:
            batches = accelerator.skip_first_batches(loader, done_in_epoch)
            batches.set_epoch(epoch)
        for batch in batches:
            done_in_epoch += 1
            micro = len(window)
            # One generator per (step, micro-batch, process), and one shared by all processes: a resumed
            # run draws the same noise, and processes agree where they must (Wan 2.2's expert choice).
            shared_seed = (config.seed * 1_000_003 + global_step) * 64 + micro
            gen = torch.Generator().manual_seed(shared_seed * 64 + accelerator.process_index)
            shared = torch.Generator().manual_seed(shared_seed * 64 + 63)
            with accelerator.accumulate(*nets):
                t0 = time.perf_counter()
                loss, logs = step_fn(
                    family, pipe, nets, batch, config, num_frames, gen, *extra, shared_generator=shared
                )
                if not torch.isfinite(loss):
                    last = list_checkpoints(run)
                    raise TrainingDivergedError(
                        f"loss is {loss.item()} at step {global_step + 1}; lower --lr (now {config.learning_rate:g})"
                        f" or --max-grad-norm; last checkpoint: {last[-1] if last else 'none'}"
                    )
                t1 = time.perf_counter()
                accelerator.backward(loss)
                grad_norm = None
                if accelerator.sync_gradients:
                    grad_norm = accelerator.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                t2 = time.perf_counter()
            window.append(
                {"loss": loss.detach().item(), **logs, "time_forward_s": t1 - t0, "time_backward_s": t2 - t1}
            )
            if not accelerator.sync_gradients:
                continue
            global_step += 1
            now = time.perf_counter()
            row = {
                "step": global_step,
                "lr": lr_scheduler.get_last_lr()[0],
                "grad_norm": float(grad_norm) if grad_norm is not None else math.nan,
            }
            keys = list(window[0])
            means = torch.tensor(
                [sum(w[k] for w in window) / len(window) for k in keys],
                dtype=torch.float64,
                device=accelerator.device,
            )
            if accelerator.num_processes > 1:  # the mean over processes (timings: the mean process)
                means = accelerator.reduce(means, reduction="mean")
            row.update(zip(keys, means.tolist()))
            row["time_step_s"] = now - t_step
            t_step, window = now, []
            last_row = row
            if accelerator.is_main_process:
                log.write(row)
                if log_with:
                    accelerator.log({k: v for k, v in row.items() if k != "step"}, step=global_step)
            progress.update(1)
            progress.set_postfix(loss=f"{row['loss']:.4g}")
            if global_step % config.checkpointing_steps == 0 or global_step == config.steps:
                _checkpoint(
                    accelerator,
                    config,
                    run,
                    global_step,
                    {"step": global_step, "epoch": epoch, "batches_done_in_epoch": done_in_epoch},
                )
            if global_step >= config.steps:
                break
        else:
            epoch, done_in_epoch = epoch + 1, 0
    progress.close()
    accelerator.wait_for_everyone()
    accelerator.end_training()
    ckpts = list_checkpoints(run)
    return {
        "step": global_step,
        "checkpoint": str(ckpts[-1]) if ckpts else None,
        "last": last_row,
        "is_main_process": accelerator.is_main_process,
        "height": height,
        "width": width,
        "frames": num_frames,
        "family": family.name,
    }


class EpochShuffle:
    """A shuffling sampler whose order depends only on (seed, epoch): resumable exactly."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        import torch

        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def _checkpoint(accelerator, config: TrainConfig, run: Path, step: int, state: dict) -> None:
    from newtonbench.atomic import write_json

    path = run / f"checkpoint-{step}"
    if accelerator.is_main_process:
        _prune_checkpoints(run, config.checkpoints_total_limit)
        if path.exists():  # a crashed save of this very step
            shutil.rmtree(path)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(path))
    if accelerator.is_main_process:
        write_json(path / STATE_NAME, state)
        config.save(path)  # written last: its presence marks the checkpoint complete
        logger.info("saved %s", path)


class _CsvLog:
    """Per-step CSV. On resume, rows after the resumed step are dropped (they will be redone)."""

    def __init__(self, path: Path, keep_until: int):
        self.path = path
        self.fields: list[str] | None = None
        if path.exists():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= keep_until]
            if rows:
                self.fields = list(rows[0])
            from newtonbench.atomic import atomic_path

            with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
                if self.fields:
                    w = csv.DictWriter(f, fieldnames=self.fields)
                    w.writeheader()
                    w.writerows(rows)

    def write(self, row: dict) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row)
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
