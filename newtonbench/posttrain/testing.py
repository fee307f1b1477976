"""Tiny random pipelines of every supported family and a tiny bench, for tests and benchmarks.

Everything is built from configs and saved with `save_pretrained`, so the real `from_pretrained`
loading path runs; nothing touches a model hub. The configs follow diffusers' own fast tests
(tests/pipelines/wan/test_wan_image_to_video.py, tests/pipelines/cogvideo/test_cogvideox_image2video.py).
"""

from __future__ import annotations

from pathlib import Path

WORDS = (
    "a",
    "the",
    "ball",
    "cube",
    "sphere",
    "box",
    "falls",
    "drops",
    "slides",
    "down",
    "up",
    "ramp",
    "thrown",
    "tossed",
    "red",
    "blue",
    "green",
    "yellow",
    "wooden",
    "metal",
    "onto",
    "floor",
    "table",
    "off",
    "of",
    "is",
    "and",
    "from",
    "height",
    "checkered",
    "with",
    "at",
    "speed",
    "angle",
    "launched",
    "horizontally",
    "wood",
    "stone",
    "grid",
    "plain",
)


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
    kw = {
        "vocab_size": vocab_size,
        "d_model": d_model,
        "d_kv": 8,
        "d_ff": 37,
        "num_layers": 1,
        "num_heads": 4,
        "relative_attention_num_buckets": 8,
    }
    return UMT5EncoderModel(UMT5Config(**kw)) if umt5 else T5EncoderModel(T5Config(**kw))


WAN_KINDS = ("2.1", "2.2-a14b", "2.2-ti2v")


def build_tiny_wan(folder: str | Path, kind: str = "2.1", size: int = 32) -> Path:
    """A tiny WanImageToVideoPipeline shaped like one of the released checkpoints:

    - "2.1": Wan 2.1 I2V, one transformer, CLIP image encoder, image key/value projections;
    - "2.2-a14b": Wan 2.2 I2V A14B, two experts split at boundary_ratio, UniPC flow sampler, no image encoder;
    - "2.2-ti2v": Wan 2.2 TI2V 5B, expand_timesteps, the 48-channel residual VAE (16x spatial compression).
    """
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        UniPCMultistepScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    if kind not in WAN_KINDS:
        raise ValueError(f"kind={kind!r}; allowed: {', '.join(WAN_KINDS)}")
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    if kind == "2.2-ti2v":
        vae = AutoencoderKLWan(
            base_dim=3,
            z_dim=48,
            in_channels=12,
            out_channels=12,
            is_residual=True,
            patch_size=2,
            latents_mean=[0.0] * 48,
            latents_std=[1.0] * 48,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            scale_factor_spatial=16,
            scale_factor_temporal=4,
            temperal_downsample=[False, True, True],
        )
    else:
        vae = AutoencoderKLWan(
            base_dim=3,
            z_dim=16,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
        )

    def transformer(image_dim=None, channels=(36, 16)):
        # Like Wan 2.1 I2V's config, image tokens get their own key/value projections (added_kv_proj_dim).
        torch.manual_seed(0)
        return WanTransformer3DModel(
            patch_size=(1, 2, 2),
            num_attention_heads=2,
            attention_head_dim=12,
            in_channels=channels[0],
            out_channels=channels[1],
            text_dim=32,
            freq_dim=256,
            ffn_dim=32,
            num_layers=2,
            cross_attn_norm=True,
            qk_norm="rms_norm_across_heads",
            rope_max_seq_len=32,
            image_dim=image_dim,
            added_kv_proj_dim=None if image_dim is None else 24,
        )

    parts = {
        "tokenizer": tok,
        "text_encoder": tiny_text_encoder(len(tok), umt5=True),
        "vae": vae,
        "image_encoder": None,
        "image_processor": None,
    }
    if kind == "2.1":
        torch.manual_seed(0)
        enc = CLIPVisionModel(
            CLIPVisionConfig(
                hidden_size=4,
                projection_dim=4,
                num_hidden_layers=2,
                num_attention_heads=2,
                image_size=size,
                intermediate_size=16,
                patch_size=1,
            )
        )
        parts.update(
            transformer=transformer(4),
            image_encoder=enc,
            image_processor=CLIPImageProcessor(crop_size=size, size=size),
            scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        )
    else:
        # The released Wan 2.2 pipelines sample with UniPC on flow sigmas (a multistep, stateful sampler).
        unipc = UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
        )
        if kind == "2.2-a14b":
            parts.update(
                transformer=transformer(), transformer_2=transformer(), boundary_ratio=0.875, scheduler=unipc
            )
        else:
            parts.update(transformer=transformer(channels=(48, 48)), expand_timesteps=True, scheduler=unipc)
    pipe = WanImageToVideoPipeline(**parts)
    pipe.save_pretrained(str(folder))
    return Path(folder)


def build_tiny_cogvideox(folder: str | Path, size: int = 32) -> Path:
    """CogVideoX 1.0 I2V with learned positional embeddings (as CogVideoX-5b-I2V) at size x size."""
    import torch
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXTransformer3DModel,
    )

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=8,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=32,
        num_layers=1,
        sample_width=size // 8,
        sample_height=size // 8,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=16,
        use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=True,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    # CogVideoX-5b-I2V's scheduler config: v-prediction, zero-terminal-SNR, trailing spacing.
    scheduler = CogVideoXDDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        set_alpha_to_one=True,
        timestep_spacing="trailing",
        snr_shift_scale=1.0,
    )
    pipe = CogVideoXImageToVideoPipeline(
        tokenizer=tok,
        text_encoder=tiny_text_encoder(len(tok)),
        vae=vae,
        transformer=transformer,
        scheduler=scheduler,
    )
    pipe.save_pretrained(str(folder))
    return Path(folder)


def build_tiny_ltx(folder: str | Path, size: int = 32) -> Path:
    """LTX-Video image-to-video, as diffusers' fast test of LTXImageToVideoPipeline."""
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXVideoTransformer3DModel,
    )

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4,
        upsample_factor=(1,) * 4,
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    pipe = LTXImageToVideoPipeline(
        tokenizer=tok,
        text_encoder=tiny_text_encoder(len(tok)),
        vae=vae,
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )
    pipe.save_pretrained(str(folder))
    return Path(folder)


TINY_BUILDERS = {"wan": build_tiny_wan, "cogvideox": build_tiny_cogvideox, "ltx": build_tiny_ltx}


def write_tiny_bench(
    root: str | Path,
    size: int = 32,
    frames: int = 9,
    fps: float = 8.0,
    clips: int = 2,
    splits: tuple[str, ...] = ("train", "test"),
    primitives: tuple[str, ...] = ("free_fall",),
    seed: int = 0,
) -> Path:
    """A tiny real bench through the generator's Python API (PyBullet + TinyRenderer, under a second)."""
    from newtonbench.generators.dataset_writer import GenerateConfig, generate

    return generate(
        GenerateConfig(
            out=Path(root),
            primitives=primitives,
            splits=splits,
            distributions=("id",),
            num_clips=clips,
            width=size,
            height=size,
            num_frames=frames,
            fps=fps,
            seed=seed,
        ),
        progress=False,
    )
