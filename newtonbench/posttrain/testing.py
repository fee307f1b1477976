"""Tiny random pipelines of every supported family and a tiny bench, for tests and benchmarks.

Everything is built from configs and saved with `save_pretrained`, so the real `from_pretrained`
loading path runs; nothing touches a model hub. The configs follow diffusers' own fast tests
(tests/pipelines/wan/test_wan_image_to_video.py, tests/pipelines/cogvideo/test_cogvideox_image2video.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WORDS = (
    "a the ball cube sphere box falls drops slides down up ramp thrown tossed red blue green yellow "
    "wooden metal onto floor table off of is and"
).split()


def tiny_tokenizer():
    """A T5 tokenizer over a few dozen words plus single letters (unigram model built locally)."""
    from transformers import T5TokenizerFast

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [("\u2581" + w, -1.0) for w in WORDS] + [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    return T5TokenizerFast(vocab=vocab, extra_ids=0)


def tiny_text_encoder(vocab_size: int, d_model: int = 32, umt5: bool = False):
    """T5 encoder (CogVideoX) or UMT5 encoder (Wan), the classes the real pipelines ship."""
    import torch
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    kw = dict(vocab_size=vocab_size, d_model=d_model, d_kv=8, d_ff=37, num_layers=1, num_heads=4,
              relative_attention_num_buckets=8)
    return UMT5EncoderModel(UMT5Config(**kw)) if umt5 else T5EncoderModel(T5Config(**kw))


def build_tiny_wan(folder: str | Path, two_experts: bool = False, size: int = 32) -> Path:
    """Wan 2.1 I2V (CLIP image encoder) or, with two_experts, Wan 2.2 I2V A14B-style (two transformers)."""
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])

    def transformer(image_dim):
        # Like Wan 2.1 I2V's config, image tokens get their own key/value projections (added_kv_proj_dim).
        torch.manual_seed(0)
        return WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=36, out_channels=16,
            text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", rope_max_seq_len=32, image_dim=image_dim,
            added_kv_proj_dim=None if image_dim is None else 24,
        )

    parts = dict(tokenizer=tok, text_encoder=tiny_text_encoder(len(tok), umt5=True), vae=vae,
                 scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))
    if two_experts:
        parts.update(transformer=transformer(None), transformer_2=transformer(None), boundary_ratio=0.5,
                     image_encoder=None, image_processor=None)
    else:
        torch.manual_seed(0)
        enc = CLIPVisionModel(CLIPVisionConfig(
            hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2, image_size=size,
            intermediate_size=16, patch_size=1))
        parts.update(transformer=transformer(4), image_encoder=enc,
                     image_processor=CLIPImageProcessor(crop_size=size, size=size))
    pipe = WanImageToVideoPipeline(**parts)
    pipe.save_pretrained(str(folder))
    return Path(folder)


def build_tiny_cogvideox(folder: str | Path, size: int = 32) -> Path:
    """CogVideoX 1.0 I2V with learned positional embeddings (as CogVideoX-5b-I2V) at size x size."""
    import torch
    from diffusers import (AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXImageToVideoPipeline,
                           CogVideoXTransformer3DModel)

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=8, out_channels=4, time_embed_dim=2,
        text_embed_dim=32, num_layers=1, sample_width=size // 8, sample_height=size // 8, sample_frames=9,
        patch_size=2, temporal_compression_ratio=4, max_text_seq_length=16,
        use_rotary_positional_embeddings=True, use_learned_positional_embeddings=True,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4,
    )
    # CogVideoX-5b-I2V's scheduler config: v-prediction, zero-terminal-SNR, trailing spacing.
    scheduler = CogVideoXDDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
        prediction_type="v_prediction", rescale_betas_zero_snr=True, set_alpha_to_one=True,
        timestep_spacing="trailing", snr_shift_scale=1.0,
    )
    pipe = CogVideoXImageToVideoPipeline(tokenizer=tok, text_encoder=tiny_text_encoder(len(tok)), vae=vae,
                                         transformer=transformer, scheduler=scheduler)
    pipe.save_pretrained(str(folder))
    return Path(folder)


TINY_BUILDERS = {"wan": build_tiny_wan, "cogvideox": build_tiny_cogvideox}


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random background (so optical flow has texture but the object stands out)."""
    import cv2

    noise = rng.uniform(0, 1, (size // 4, size // 4, 3)).astype(np.float32)
    return (60 + 60 * cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1)).astype(np.uint8)


def write_tiny_bench(root: str | Path, size: int = 32, frames: int = 9, fps: float = 8.0,
                     n_train: int = 2, n_test: int = 2, seed: int = 0) -> Path:
    """A minimal bench in newtonbench.dataset's on-disk format: a square falling with constant image
    acceleration over a textured plate (analytic track, exact masks)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from newtonbench.atomic import atomic_path, write_json
    from newtonbench.schema import DATASET_FORMAT_VERSION, MANIFEST_SCHEMA, TRAJECTORY_SCHEMA, clip_id
    from newtonbench.video import write_video

    import cv2

    root = Path(root)
    rng = np.random.default_rng(seed)
    manifest, traj = [], []
    side = max(4, size // 6)
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            cid = clip_id("free_fall", split, "id", i)
            plate = _texture(rng, size)
            colour = rng.integers(180, 255, 3).astype(np.uint8)
            u0, v0 = rng.uniform(size * 0.3, size * 0.7), rng.uniform(1, size * 0.2)
            acc = 2.0 * (size * 0.6) / max(frames - 1, 1) ** 2  # falls ~60% of the frame
            video = np.empty((frames, size, size, 3), np.uint8)
            masks = np.zeros((frames, size, size), np.uint8)
            for f in range(frames):
                u, v = u0, v0 + 0.5 * acc * f * f
                x0, y0 = int(round(u - side / 2)), int(round(v - side / 2))
                frame = plate.copy()
                ys, xs = slice(max(y0, 0), max(min(y0 + side, size), 0)), slice(max(x0, 0), min(x0 + side, size))
                frame[ys, xs] = colour
                masks[f, ys, xs] = 1
                video[f] = frame
                traj.append(dict(clip_id=cid, frame=f, t=f / fps, x=u / 100, y=0.0, z=-v / 100, vx=0.0, vy=0.0,
                                 vz=-acc * f * fps / 100, ax=0.0, az=-acc * fps * fps / 100, u=u, v=v,
                                 visible=True, in_contact=False))
            write_video(root / "videos" / f"{cid}.mp4", video, fps)
            for sub, img in (("first_frames", video[0]), ("backgrounds", plate)):
                with atomic_path(root / sub / f"{cid}.png") as tmp:
                    cv2.imwrite(str(tmp), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            with atomic_path(root / "masks" / f"{cid}.npz") as tmp:
                with open(tmp, "wb") as fh:
                    np.savez_compressed(fh, masks=masks)
            row = {name: None for name in MANIFEST_SCHEMA.names}
            row.update(clip_id=cid, primitive="free_fall", primitive_version=1, split=split, distribution="id",
                       seed=seed * 1000 + i, fps=fps, num_frames=frames, width=size, height=size,
                       video=f"videos/{cid}.mp4", first_frame=f"first_frames/{cid}.png", mask=f"masks/{cid}.npz",
                       background=f"backgrounds/{cid}.png", prompt="a red cube falls onto the floor",
                       gravity=9.81, object="cube", object_size_m=0.1, mass_kg=1.0, height_m=1.0,
                       accel_x=0.0, accel_z=-9.81, fx=float(size), fy=float(size), cx=(size - 1) / 2,
                       cy=(size - 1) / 2, world_to_camera=[float(v) for v in np.eye(4).ravel()],
                       motion_plane_depth_m=1.0)
            manifest.append(row)
    for name, rows, schema in (("manifest.parquet", manifest, MANIFEST_SCHEMA),
                               ("trajectories.parquet", traj, TRAJECTORY_SCHEMA)):
        with atomic_path(root / name) as tmp:
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    write_json(root / "dataset.json", {"format_version": DATASET_FORMAT_VERSION, "generator": "posttrain.testing",
                                       "counts": {"train": n_train, "test": n_test}})
    return root
