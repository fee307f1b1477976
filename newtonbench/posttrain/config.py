"""The post-training configuration: one frozen dataclass, validated on construction and saved as
config.json inside every checkpoint, so a checkpoint says exactly how it was made."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from newtonbench.errors import InvalidValueError, check_range

MODES = ("sft", "reward")
DEVICES = ("auto", "cpu", "cuda")
CONFIG_NAME = "config.json"


@dataclass(frozen=True)
class TrainConfig:
    model: str  # local folder of a diffusers image-to-video pipeline
    bench: str  # a NewtonBench dataset (its train split is used)
    out: str  # the run folder: checkpoint-N/, log.csv, logs/
    mode: str = "sft"
    # Passed as is to metrics.rewards.build_reward (reward mode). The paper's two terms score a frozen
    # clip as perfect; `accel` (against the train clip's ground truth) is what makes freezing lose.
    reward: str = "kinematic=1,mass=0.5,accel=1"
    reward_options: dict = field(default_factory=dict)  # keyword options of build_reward
    init_lora: str | None = None  # start from this LoRA (a RUN or RUN/checkpoint-N, e.g. the SFT run)
    rank: int = 16
    lora_alpha: int | None = None  # None: alpha = rank (scale 1), as diffusers' LoRA scripts default
    learning_rate: float = 1e-4
    steps: int = 1000  # optimizer steps (after gradient accumulation)
    batch_size: int = 1
    gradient_accumulation: int = 1
    height: int | None = None  # None: the family's default for this bench (see families.resolution)
    width: int | None = None
    frames: int | None = None  # None: the largest count the model accepts that fits in the bench's clips
    inference_steps: int = 20  # reward mode: denoising steps per sample
    backprop_steps: int = 1  # reward mode: K, the last K denoising steps keep gradients (DRaFT-K)
    guidance_scale: float | None = None  # reward mode: classifier-free guidance; None: the family's default
    max_grad_norm: float = 1.0
    seed: int = 0
    device: str = "auto"
    gradient_checkpointing: bool = True
    checkpointing_steps: int = 500
    checkpoints_total_limit: int | None = 3
    primitives: tuple[str, ...] = ()  # empty: every primitive of the train split
    resume: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise InvalidValueError(f"mode={self.mode!r}; allowed: {', '.join(MODES)}")
        if self.device not in DEVICES:
            raise InvalidValueError(f"device={self.device!r}; allowed: {', '.join(DEVICES)}")
        check_range("rank", self.rank, 1, 1024)
        if self.lora_alpha is not None:
            check_range("lora_alpha", self.lora_alpha, 1)
        check_range("learning_rate", self.learning_rate, 0, 1, low_open=True)
        check_range("steps", self.steps, 1)
        check_range("batch_size", self.batch_size, 1)
        check_range("gradient_accumulation", self.gradient_accumulation, 1)
        for name in ("height", "width"):
            value = getattr(self, name)
            if value is not None:
                check_range(name, value, 16, 4096)
                if value % 16:
                    raise InvalidValueError(
                        f"{name}={value} is not a multiple of 16; allowed: multiples of 16"
                    )
        if self.frames is not None:
            check_range("frames", self.frames, 1, 1024)
        check_range("inference_steps", self.inference_steps, 1, 1000)
        check_range("backprop_steps", self.backprop_steps, 1, self.inference_steps)
        if self.guidance_scale is not None:
            check_range("guidance_scale", self.guidance_scale, 1.0, 50.0)
        check_range("max_grad_norm", self.max_grad_norm, 0, low_open=True)
        check_range("checkpointing_steps", self.checkpointing_steps, 1)
        if self.checkpoints_total_limit is not None:
            check_range("checkpoints_total_limit", self.checkpoints_total_limit, 1)
        # A frozen dataclass may still receive a list from JSON or click: normalise without mutation rules.
        object.__setattr__(self, "primitives", tuple(self.primitives))
        object.__setattr__(self, "reward_options", dict(self.reward_options))

    @property
    def alpha(self) -> int:
        return self.lora_alpha if self.lora_alpha is not None else self.rank

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["primitives"] = list(self.primitives)
        return d

    def save(self, folder: str | Path) -> Path:
        from newtonbench.atomic import write_json

        path = Path(folder) / CONFIG_NAME
        write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        if path.is_dir():
            path = path / CONFIG_NAME
        data = json.loads(path.read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidValueError(f"{path}: unknown config keys {unknown}; allowed: {sorted(known)}")
        return cls(**data)

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)
