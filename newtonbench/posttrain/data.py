"""A bench's clips as a torch Dataset for post-training (read only through newtonbench.dataset)."""

from __future__ import annotations

import logging

import numpy as np

from newtonbench.errors import DatasetError

logger = logging.getLogger(__name__)


def _resize(x, height: int, width: int, mode: str = "bilinear"):
    """float [..., C, H, W] -> [..., C, height, width]; antialiased when shrinking."""
    import torch.nn.functional as F

    if tuple(x.shape[-2:]) == (height, width):
        return x
    lead = x.shape[:-3]
    flat = x.reshape(-1, *x.shape[-3:])
    if mode == "nearest":
        out = F.interpolate(flat, size=(height, width), mode="nearest")
    else:
        out = F.interpolate(flat, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return out.reshape(*lead, *out.shape[-3:])


def _image(arr: np.ndarray):
    """uint8 [H, W, 3] -> float [3, H, W] in [0, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float() / 255.0


class BenchClips:
    """The clips of a bench split as training samples (a map-style torch Dataset).

    Each item is a dict: clip_id, prompt, first_frame float [3, H, W] in [0, 1], first_mask float
    [H, W] in {0, 1}, background float [3, H, W] and, with `with_video`, video float [T, 3, H, W]
    (the clip's first T = num_frames frames), all resized to (height, width).
    """

    def __init__(
        self,
        dataset,
        height: int,
        width: int,
        num_frames: int,
        split: str = "train",
        primitives=None,
        with_video: bool = True,
    ):
        self.ds = dataset
        self.height, self.width, self.num_frames = height, width, num_frames
        self.with_video = with_video
        rows = dataset.select(primitives=list(primitives) if primitives else None, splits=[split])
        if len(rows) == 0:
            what = f" for primitives {', '.join(primitives)}" if primitives else ""
            raise DatasetError(
                f"{dataset.root}: no {split} clips{what}; generate a bench with a train split"
                " (newtonbench generate --splits train ...)"
            )
        short = rows[rows["num_frames"] < num_frames]
        if with_video and len(short):
            raise DatasetError(
                f"clip {short['clip_id'].iloc[0]} has {int(short['num_frames'].iloc[0])} frames;"
                f" training needs >= {num_frames} (lower --frames)"
            )
        self.rows = rows
        self.clip_ids = list(rows["clip_id"])
        self.prompts = list(rows["prompt"].fillna(""))

    def __len__(self) -> int:
        return len(self.clip_ids)

    def __getitem__(self, i: int) -> dict:
        import torch

        from newtonbench.video import read_video

        cid = self.clip_ids[i]
        h, w = self.height, self.width
        item = {
            "clip_id": cid,
            "prompt": self.prompts[i],
            "first_frame": _resize(_image(self.ds.first_frame(cid)), h, w),
            "background": _resize(_image(self.ds.background(cid)), h, w),
        }
        masks = self.ds.masks(cid)
        item["first_mask"] = _resize(torch.from_numpy(masks[:1].astype(np.float32))[None], h, w, "nearest")[
            0, 0
        ]
        if self.with_video:
            frames = read_video(self.ds.video_path(cid)).frames[: self.num_frames]
            if len(frames) < self.num_frames:
                raise DatasetError(
                    f"{self.ds.video_path(cid)}: {len(frames)} decodable frames; need {self.num_frames}"
                )
            video = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
            item["video"] = _resize(video, h, w)
        return item
