"""`newtonbench sample`: one video per bench clip from its first frame and prompt, ready for `score`.

Sampling is the pipeline's own `__call__` (with the LoRA loaded by its own `load_lora_weights`), so
what is scored is exactly what a user of the model gets. Videos are written as VIDEOS/<clip_id>.mp4 at
the bench's fps, frame count and resolution; existing files are skipped (resumable).
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

from newtonbench.errors import DatasetError, check_range
from newtonbench.posttrain.families import detect_family, require_train_deps, resolve_model_dir

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleConfig:
    model: str
    bench: str
    out: str
    lora: str | None = None  # RUN or RUN/checkpoint-N
    splits: tuple[str, ...] = ("test",)
    primitives: tuple[str, ...] = ()
    limit: int | None = None
    inference_steps: int = 50
    guidance_scale: float | None = None  # None: the family's default
    height: int | None = None
    width: int | None = None
    seed: int = 0
    device: str = "auto"

    def __post_init__(self):
        check_range("inference_steps", self.inference_steps, 1, 1000)
        if self.limit is not None:
            check_range("limit", self.limit, 1)
        if self.guidance_scale is not None:
            check_range("guidance_scale", self.guidance_scale, 1.0, 50.0)
        object.__setattr__(self, "splits", tuple(self.splits))
        object.__setattr__(self, "primitives", tuple(self.primitives))


def clip_seed(seed: int, clip_id: str) -> int:
    """A per-clip seed independent of order and limit, so a resumed or partial run is reproducible."""
    return (seed * 2_654_435_761 + zlib.crc32(clip_id.encode())) % (2**63)


def sample(config: SampleConfig) -> dict:
    """Generate the missing videos; returns counts {"written", "skipped", "total"}."""
    require_train_deps()
    import numpy as np
    import torch
    from PIL import Image
    from tqdm.auto import tqdm

    from newtonbench.dataset import open_dataset
    from newtonbench.posttrain.data import _resize
    from newtonbench.posttrain.loop import load_lora_for_sampling, resolve_checkpoint, resolve_device
    from newtonbench.video import write_video

    family = detect_family(config.model)
    ds = open_dataset(config.bench)
    rows = ds.select(splits=list(config.splits), primitives=list(config.primitives) or None)
    if config.limit is not None:
        rows = rows.iloc[: config.limit]
    if len(rows) == 0:
        raise DatasetError(
            f"{ds.root}: no clips in splits {', '.join(config.splits)}"
            + (f" for primitives {', '.join(config.primitives)}" if config.primitives else "")
        )
    checkpoint = resolve_checkpoint(config.lora) if config.lora else None  # fail before loading the model
    out = Path(config.out)
    todo = [r for r in rows.to_dict("records") if not (out / f"{r['clip_id']}.mp4").exists()]
    counts = {"total": len(rows), "skipped": len(rows) - len(todo), "written": 0}
    if not todo:
        return counts

    device = resolve_device(config.device)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    pipe = family.load(resolve_model_dir(config.model), dtype)
    if checkpoint is not None:
        load_lora_for_sampling(family, pipe, checkpoint)
    pipe.to(device)
    guidance = config.guidance_scale if config.guidance_scale is not None else family.default_guidance
    for row in tqdm(todo, desc="sample", unit="clip"):
        cid = row["clip_id"]
        bench_h, bench_w, bench_t = int(row["height"]), int(row["width"]), int(row["num_frames"])
        h, w = family.resolution(pipe, bench_h, bench_w, config.height, config.width)
        frames = family.frames_at_least(bench_t)
        image = Image.fromarray(ds.first_frame(cid)).resize((w, h), Image.BICUBIC)
        result = pipe(
            image=image,
            prompt=row["prompt"] or "",
            height=h,
            width=w,
            num_frames=frames,
            num_inference_steps=config.inference_steps,
            guidance_scale=guidance,
            generator=torch.Generator(device).manual_seed(clip_seed(config.seed, cid)),
            output_type="pt",
            **family.call_kwargs(pipe),
        ).frames  # [1, T, 3, h, w] in [0, 1]
        video = _resize(result[0, :bench_t].float().cpu(), bench_h, bench_w)
        arr = (video.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        write_video(out / f"{cid}.mp4", np.ascontiguousarray(arr), float(row["fps"]))
        counts["written"] += 1
    return counts
