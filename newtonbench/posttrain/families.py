"""Supported diffusers image-to-video families, detected from a model folder's model_index.json.

Each family is one adapter class that knows its pipeline's conventions, copied from the pipeline's own
`__call__` and diffusers' training examples, so that what we train is what `pipe(...)` samples:

- how a batch of first frames and prompts becomes conditioning (text embeddings, image latents, ...);
- one denoising step (classifier-free guidance and the scheduler's step), written WITHOUT
  `torch.no_grad` so that reward fine-tuning can backpropagate through the last K steps (DRaFT-K);
- VAE decoding to frames in [0, 1];
- the supervised loss of the model: flow matching for Wan and LTX-Video, v-prediction DDPM for CogVideoX.

Adding a family = one class registered in FAMILIES; the tests iterate the registry.
"""

from __future__ import annotations

import inspect
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

from newtonbench.errors import InvalidValueError, MissingDependencyError, NewtonBenchError
from newtonbench.registry import Registry

logger = logging.getLogger(__name__)

LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"


class ModelError(NewtonBenchError):
    """A model folder that is missing, unreadable or of an unsupported family."""


@dataclass
class Conditioning:
    """What one batch is conditioned on, computed once per batch without gradients."""

    batch_size: int
    height: int
    width: int
    num_frames: int
    guidance_scale: float
    prompt_embeds: object  # torch.Tensor
    negative_prompt_embeds: object | None = None
    prompt_attention_mask: object | None = None  # LTX: text padding mask ([negative; positive] with CFG)
    image_embeds: object | None = None  # Wan 2.1: CLIP image tokens
    # Wan I2V: mask + first-frame latents; Wan TI2V: the image latent; CogVideoX: padded image latents;
    # LTX: the packed initial latents (image latent first, then noise), drawn with the image encoding.
    image_latents: object | None = None
    rotary: object | None = None  # CogVideoX: 3D RoPE (cos, sin)
    ofs: object | None = None  # CogVideoX: ofs embedding input when the transformer has one
    # Wan 2.2 TI2V: 0 on the (clean) first latent frame, 1 elsewhere, [1, 1, F, h, w];
    # LTX: the pipeline's packed conditioning mask, 1 on the first latent frame's tokens, [B, S].
    first_frame_mask: object | None = None

    @property
    def cfg(self) -> bool:
        return self.guidance_scale > 1.0

    def batched_prompt_embeds(self):
        """[negative; positive] text embeddings for one batched CFG pass, else the positive ones."""
        import torch

        return (
            torch.cat([self.negative_prompt_embeds, self.prompt_embeds]) if self.cfg else self.prompt_embeds
        )

    def doubled(self, x):
        """x twice along the batch for one batched [uncond; text] pass under CFG, else x."""
        import torch

        return torch.cat([x, x]) if self.cfg else x

    def guide(self, pred):
        """Classifier-free guidance on a batched [uncond; text] prediction (unchanged without CFG)."""
        return self.mix(*pred.chunk(2)) if self.cfg else pred

    def mix(self, uncond, text):
        """The guided prediction from the unconditional and the text-conditioned ones."""
        return uncond + self.guidance_scale * (text - uncond)


class VideoFamily:
    """Base class: the conventions of one diffusers image-to-video pipeline class."""

    name: str = ""
    pipeline_class: str = ""
    description: str = ""
    default_guidance: float = 5.0
    lora_target_modules: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")
    temporal_factor: int = 4  # both VAEs compress time by 4: valid frame counts are 4k+1

    # --- loading ---------------------------------------------------------------------------------
    def torch_dtype(self, dtype):
        return dtype

    def load(self, model_dir: Path, dtype):
        import diffusers

        cls = getattr(diffusers, self.pipeline_class)
        try:
            with warnings.catch_warnings():
                # `torch_dtype` works on every diffusers we support; newer ones merely prefer `dtype`.
                warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
                pipe = cls.from_pretrained(
                    str(model_dir), torch_dtype=self.torch_dtype(dtype), local_files_only=True
                )
        except (OSError, ValueError) as e:
            raise ModelError(
                f"{model_dir}: cannot load {self.pipeline_class} ({e.__class__.__name__}: {e})"
            ) from e
        self.check_supported(pipe, model_dir)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def check_supported(self, pipe, model_dir: Path) -> None:
        """Raise ModelError for variants of the family whose conventions are not implemented."""

    def denoiser_names(self, pipe) -> list[str]:
        """The pipeline components that get LoRA adapters (in this order everywhere)."""
        return ["transformer"]

    def lora_weight_name(self, component: str) -> str:
        return (
            LORA_WEIGHT_NAME
            if component == "transformer"
            else f"pytorch_lora_weights_{component}.safetensors"
        )

    # --- sizes -----------------------------------------------------------------------------------
    def spatial_multiple(self, pipe) -> int:
        raise NotImplementedError

    def resolution(
        self, pipe, bench_height: int, bench_width: int, height=None, width=None
    ) -> tuple[int, int]:
        """Training/sampling resolution: the user's, else the bench's rounded down to the model's grid."""
        m = self.spatial_multiple(pipe)
        h = height if height is not None else max(m, bench_height // m * m)
        w = width if width is not None else max(m, bench_width // m * m)
        for name, v in (("height", h), ("width", w)):
            if v % m:
                raise InvalidValueError(
                    f"{name}={v} is not a multiple of {m}; allowed for {self.name}: multiples of {m}"
                )
        return h, w

    def frames_at_most(self, n: int) -> int:
        """The largest frame count the model accepts that is <= n (4k+1)."""
        if n < 1:
            raise InvalidValueError(f"frames={n}; allowed: >= 1")
        return (n - 1) // self.temporal_factor * self.temporal_factor + 1

    def frames_at_least(self, n: int) -> int:
        """The smallest frame count the model accepts that is >= n (4k+1)."""
        k = -(-(max(n, 1) - 1) // self.temporal_factor)
        return k * self.temporal_factor + 1

    def check_frames(self, n: int) -> None:
        if (n - 1) % self.temporal_factor:
            raise InvalidValueError(
                f"frames={n}; allowed for {self.name}: 4k+1 (e.g. {self.frames_at_most(n)} or {self.frames_at_least(n)})"
            )

    def call_kwargs(self, pipe) -> dict:
        """Extra keyword arguments for `pipe(...)` so that sampling matches training's conditioning."""
        return {}

    # --- the model's conventions, implemented per family ----------------------------------------
    def encode(
        self, pipe, first_frames, prompts, num_frames: int, guidance_scale: float, generator=None
    ) -> Conditioning:
        """first_frames: float [B, 3, H, W] in [0, 1]; prompts: list of B strings. No gradients."""
        raise NotImplementedError

    def initial_latents(self, pipe, cond: Conditioning, generator=None):
        raise NotImplementedError

    def set_timesteps(self, pipe, num_inference_steps: int, cond: Conditioning):
        pipe.scheduler.set_timesteps(num_inference_steps, device=pipe.transformer.device)
        return pipe.scheduler.timesteps

    def step(self, pipe, nets, latents, t, i: int, timesteps, cond: Conditioning, state: dict):
        """One denoising step x_t -> x_{t-1}; differentiable (no torch.no_grad here)."""
        raise NotImplementedError

    def decode(self, pipe, latents):
        """Latents -> frames float [B, T, 3, H, W] in [0, 1]; differentiable."""
        raise NotImplementedError

    def sft_conditioning(self, pipe, first_frames, prompts, num_frames: int, generator=None) -> Conditioning:
        """Conditioning for the supervised loss (no classifier-free guidance)."""
        return self.encode(pipe, first_frames, prompts, num_frames, 1.0, generator)

    def sft_loss(self, pipe, nets, video, cond: Conditioning, generator=None, shared_generator=None):
        """The model's own denoising loss on a clip (video: float [B, T, 3, H, W] in [0, 1]).

        `shared_generator` draws what must agree across processes (which expert trains this step)."""
        raise NotImplementedError

    # --- shared helpers --------------------------------------------------------------------------
    def generate(
        self,
        pipe,
        nets,
        cond: Conditioning,
        num_inference_steps: int,
        backprop_steps: int = 0,
        generator=None,
    ):
        """Sample from noise; only the last `backprop_steps` denoising steps keep gradients (DRaFT-K).

        Returns final latents. With backprop_steps=0 nothing keeps gradients (plain sampling).
        """
        import torch

        latents = self.initial_latents(pipe, cond, generator)
        timesteps = self.set_timesteps(pipe, num_inference_steps, cond)
        first_grad = len(timesteps) - backprop_steps
        state: dict = {}
        for i, t in enumerate(timesteps):
            with torch.set_grad_enabled(backprop_steps > 0 and i >= first_grad and torch.is_grad_enabled()):
                latents = self.step(pipe, nets, latents, t, i, timesteps, cond, state)
        return self.finalize(pipe, latents, cond, generator)

    def finalize(self, pipe, latents, cond: Conditioning, generator=None):
        """What the pipeline does to the latents after its loop, before decoding."""
        return latents

    @staticmethod
    def _device(pipe):
        return pipe.transformer.device

    @staticmethod
    def _dtype(pipe):
        return pipe.transformer.dtype

    @staticmethod
    def _encode_prompt(pipe, prompts, batch_size: int, cfg: bool, max_sequence_length: int, device):
        """The pipeline's own `encode_prompt`, with an empty negative prompt under classifier-free guidance."""
        return pipe.encode_prompt(
            prompt=list(prompts),
            negative_prompt=[""] * batch_size if cfg else None,
            do_classifier_free_guidance=cfg,
            num_videos_per_prompt=1,
            max_sequence_length=max_sequence_length,
            device=device,
        )

    @staticmethod
    def _conditioning(
        first_frames, num_frames, guidance_scale, prompt_embeds, negative_prompt_embeds, dtype=None, **fields
    ) -> Conditioning:
        """The fields every family fills alike (sizes from first_frames [B, 3, H, W], the text embeddings,
        cast to `dtype` unless it is None); `fields` are the family's own."""
        b, _, h, w = first_frames.shape
        if dtype is not None:
            prompt_embeds = prompt_embeds.to(dtype)
            if negative_prompt_embeds is not None:
                negative_prompt_embeds = negative_prompt_embeds.to(dtype)
        return Conditioning(
            batch_size=b,
            height=h,
            width=w,
            num_frames=num_frames,
            guidance_scale=guidance_scale,
            prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_prompt_embeds,
            **fields,
        )


def _randn(shape, generator, device, dtype):
    from diffusers.utils.torch_utils import randn_tensor

    return randn_tensor(shape, generator=generator, device=device, dtype=dtype)


def _to_frames(video):
    """Decoded video [B, 3, T, H, W] in [-1, 1] -> frames float [B, T, 3, H, W] in [0, 1]."""
    return (video.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 1, 3, 4)


def _to_pil(first_frames):
    """float [B, 3, H, W] in [0, 1] -> list of PIL images, as the pipelines' image processors expect."""
    from PIL import Image

    arr = (
        (first_frames.detach().float().clamp(0, 1) * 255).round().to("cpu").byte().permute(0, 2, 3, 1).numpy()
    )
    return [Image.fromarray(a) for a in arr]


FAMILIES: Registry[VideoFamily] = Registry("model family")


class WanFamily(VideoFamily):
    """Wan 2.1 I2V (one transformer + CLIP image encoder), Wan 2.2 I2V A14B (two experts split at
    `boundary_ratio`, no image encoder) and Wan 2.2 TI2V 5B (`expand_timesteps`: the first latent frame
    is the clean image latent, at timestep 0, instead of channel-concatenated conditioning).
    Flow matching: x_t = (1 - s) x_0 + s eps, the transformer predicts eps - x_0 at timestep 1000 s."""

    name = "wan"
    pipeline_class = "WanImageToVideoPipeline"
    description = "Wan 2.1 / 2.2 image-to-video (WanImageToVideoPipeline)"
    default_guidance = 5.0
    max_sequence_length = 512  # the pipeline's default
    # Wan 2.1 I2V's cross-attention has extra key/value projections for the CLIP image tokens; adapting
    # them too also stops diffusers' loader from padding the LoRA with zero weights for them.
    lora_target_modules = ("to_q", "to_k", "to_v", "to_out.0", "add_k_proj", "add_v_proj")

    def torch_dtype(self, dtype):
        # Wan's model cards load the VAE and the CLIP image encoder in float32; only the big parts in dtype.
        import torch

        return {"transformer": dtype, "transformer_2": dtype, "text_encoder": dtype, "default": torch.float32}

    def check_supported(self, pipe, model_dir):
        if pipe.transformer is None:
            raise ModelError(f"{model_dir}: WanImageToVideoPipeline without `transformer` is not supported")

    def denoiser_names(self, pipe):
        return ["transformer"] + (["transformer_2"] if pipe.transformer_2 is not None else [])

    def spatial_multiple(self, pipe):
        return pipe.vae_scale_factor_spatial * pipe.transformer.config.patch_size[1]

    def _latent_stats(self, pipe, device, dtype):
        import torch

        z = pipe.vae.config.z_dim
        mean = torch.tensor(pipe.vae.config.latents_mean).view(1, z, 1, 1, 1).to(device, dtype)
        inv_std = 1.0 / torch.tensor(pipe.vae.config.latents_std).view(1, z, 1, 1, 1).to(device, dtype)
        return mean, inv_std

    def _encode_video(self, pipe, video_bcthw, sample_mode: str, generator=None):
        """[B, 3, T, H, W] in [-1, 1] -> normalised latents, float32 (as the pipeline's prepare_latents)."""
        import torch

        dist = pipe.vae.encode(video_bcthw.to(pipe.vae.device, pipe.vae.dtype)).latent_dist
        lat = dist.mode() if sample_mode == "argmax" else dist.sample(generator)
        mean, inv_std = self._latent_stats(pipe, lat.device, torch.float32)
        return (lat.float() - mean) * inv_std

    def encode(self, pipe, first_frames, prompts, num_frames, guidance_scale, generator=None):
        import torch

        self.check_frames(num_frames)
        device, tdtype = self._device(pipe), self._dtype(pipe)
        b, _, h, w = first_frames.shape
        cfg = guidance_scale > 1.0
        with torch.no_grad():
            pe, npe = self._encode_prompt(pipe, prompts, b, cfg, self.max_sequence_length, device)
            image_embeds = None
            if pipe.transformer.config.image_dim is not None:  # only Wan 2.1 I2V takes CLIP image tokens
                image_embeds = pipe.encode_image(_to_pil(first_frames), device).to(tdtype)
            # As WanImageToVideoPipeline.prepare_latents (its own repeats an already batched condition B
            # times, so it is written out here).
            image = first_frames.to(device, torch.float32) * 2 - 1
            lh, lw = h // pipe.vae_scale_factor_spatial, w // pipe.vae_scale_factor_spatial
            if pipe.config.expand_timesteps:
                # TI2V: the first frame's latent replaces the first latent frame; a mask marks the rest.
                image_latents = self._encode_video(pipe, image[:, :, None], "argmax").to(device)
                first_frame_mask = torch.ones(
                    1, 1, (num_frames - 1) // pipe.vae_scale_factor_temporal + 1, lh, lw, device=device
                )
                first_frame_mask[:, :, 0] = 0
            else:
                # I2V: the first frame followed by zeros, VAE-encoded, plus a 4-channel mask marking the
                # (4 temporally compressed) first-frame positions, concatenated on the channel axis.
                video_condition = torch.cat(
                    [image[:, :, None], image.new_zeros(b, 3, num_frames - 1, h, w)], dim=2
                )
                latent_condition = self._encode_video(pipe, video_condition, "argmax").to(device)
                tf = pipe.vae_scale_factor_temporal
                mask = torch.ones(b, 1, num_frames, lh, lw, device=device)
                mask[:, :, 1:] = 0
                mask = torch.cat([mask[:, :, :1].repeat_interleave(tf, dim=2), mask[:, :, 1:]], dim=2)
                mask = mask.view(b, -1, tf, lh, lw).transpose(1, 2)
                image_latents = torch.cat([mask, latent_condition], dim=1)
                first_frame_mask = None
        return self._conditioning(
            first_frames,
            num_frames,
            guidance_scale,
            pe,
            npe,
            tdtype,
            image_embeds=image_embeds,
            image_latents=image_latents,
            first_frame_mask=first_frame_mask,
        )

    def initial_latents(self, pipe, cond, generator=None):
        import torch

        lat_frames = (cond.num_frames - 1) // pipe.vae_scale_factor_temporal + 1
        s = pipe.vae_scale_factor_spatial
        shape = (cond.batch_size, pipe.vae.config.z_dim, lat_frames, cond.height // s, cond.width // s)
        return _randn(shape, generator, self._device(pipe), torch.float32)

    def _boundary(self, pipe):
        r = pipe.config.boundary_ratio
        return None if r is None else r * pipe.scheduler.config.num_train_timesteps

    def _net_for(self, pipe, nets, t):
        boundary = self._boundary(pipe)
        return nets[0] if boundary is None or t >= boundary else nets[1]

    def _predict(self, net, x, timestep, text_embeds, cond, pipe):
        return net(
            hidden_states=x.to(self._dtype(pipe)),
            timestep=timestep,
            encoder_hidden_states=text_embeds,
            encoder_hidden_states_image=cond.image_embeds,
            return_dict=False,
        )[0]

    def _input(self, latents, t, cond):
        """The transformer's input and timestep for latents at t (per token for TI2V, as the pipeline)."""
        import torch

        b = latents.shape[0]
        if cond.first_frame_mask is None:
            return torch.cat([latents, cond.image_latents.to(latents.dtype)], dim=1), t.expand(b)
        mask = cond.first_frame_mask
        x = (1 - mask) * cond.image_latents + mask * latents
        # The pipeline's per-token timestep: 0 on the clean first frame (patch 2x2 -> every other pixel).
        tokens = mask[0][0][:, ::2, ::2].flatten()
        t = t.reshape(-1, 1) if torch.is_tensor(t) and t.ndim else t
        return x, (tokens[None] * t).expand(b, -1)

    def finalize(self, pipe, latents, cond, generator=None):
        if cond.first_frame_mask is None:
            return latents
        return (1 - cond.first_frame_mask) * cond.image_latents + cond.first_frame_mask * latents

    def step(self, pipe, nets, latents, t, i, timesteps, cond, state):
        net = self._net_for(pipe, nets, t)
        x, timestep = self._input(latents, t, cond)
        pred = self._predict(net, x, timestep, cond.prompt_embeds, cond, pipe)
        if cond.cfg:  # two passes, as the pipeline does
            uncond = self._predict(net, x, timestep, cond.negative_prompt_embeds, cond, pipe)
            pred = cond.mix(uncond, pred)
        return pipe.scheduler.step(pred.float(), t, latents, return_dict=False)[0].float()

    def decode(self, pipe, latents):
        mean, inv_std = self._latent_stats(pipe, latents.device, latents.dtype)
        z = (latents / inv_std + mean).to(pipe.vae.device, pipe.vae.dtype)
        video = pipe.vae.decode(z, return_dict=False)[0]  # [B, 3, T, H, W] in [-1, 1]
        return _to_frames(video)

    def _shift(self, pipe) -> float:
        cfg = pipe.scheduler.config
        for key in ("shift", "flow_shift"):  # FlowMatchEuler calls it shift, UniPC (Wan's default) flow_shift
            if cfg.get(key) is not None:
                return float(cfg[key])
        return 1.0

    def sft_loss(self, pipe, nets, video, cond, generator=None, shared_generator=None):
        import torch

        device = self._device(pipe)
        b = video.shape[0]
        with torch.no_grad():
            x0 = self._encode_video(
                pipe, video.permute(0, 2, 1, 3, 4).to(device) * 2 - 1, "sample", generator
            )
        noise = _randn(x0.shape, generator, device, torch.float32)
        # Logit-normal timesteps (SD3's default density), shifted like the sampler's sigmas.
        if len(nets) > 1:
            # Two experts: one timestep per step, drawn alike on every process, so that all processes
            # train the same expert (DDP all-reduces the gradients of the expert that ran).
            u = torch.sigmoid(_randn((1,), shared_generator or generator, device, torch.float32)).expand(b)
        else:
            u = torch.sigmoid(_randn((b,), generator, device, torch.float32))
        shift = self._shift(pipe)
        sigma = shift * u / (1 + (shift - 1) * u)
        timestep = sigma * pipe.scheduler.config.num_train_timesteps
        s = sigma.view(b, 1, 1, 1, 1)
        noisy = (1 - s) * x0 + s * noise
        target = noise - x0
        net = self._net_for(pipe, nets, timestep[0])
        x, per_token = self._input(noisy, timestep, cond)
        pred = self._predict(net, x, per_token, cond.prompt_embeds, cond, pipe).float()
        if cond.first_frame_mask is None:
            return torch.nn.functional.mse_loss(pred, target)
        # TI2V: the first latent frame is the clean condition (timestep 0); only the others are denoised.
        mask = cond.first_frame_mask.expand_as(pred)
        return ((pred - target) ** 2 * mask).sum() / mask.sum()


class CogVideoXFamily(VideoFamily):
    """CogVideoX 1.0 I2V (CogVideoX-5b-I2V): v-prediction DDIM; the first frame's latents are
    concatenated on the channel axis of every latent frame (zeros after the first)."""

    name = "cogvideox"
    pipeline_class = "CogVideoXImageToVideoPipeline"
    description = "CogVideoX image-to-video (CogVideoXImageToVideoPipeline)"
    default_guidance = 6.0

    def check_supported(self, pipe, model_dir):
        if pipe.transformer.config.patch_size_t is not None:
            raise ModelError(
                f"{model_dir}: CogVideoX 1.5 (patch_size_t set) is not supported yet; supported: CogVideoX 1.0 I2V"
            )

    def spatial_multiple(self, pipe):
        return pipe.vae_scale_factor_spatial * pipe.transformer.config.patch_size

    def resolution(self, pipe, bench_height, bench_width, height=None, width=None):
        cfg = pipe.transformer.config
        if cfg.use_learned_positional_embeddings:
            # Learned positional embeddings exist only for the training size (diffusers' CogVideoXPatchEmbed
            # refuses any other), so this model runs at that size and its outputs are resized to the bench's.
            s = pipe.vae_scale_factor_spatial
            fixed = (cfg.sample_height * s, cfg.sample_width * s)
            if (height or fixed[0], width or fixed[1]) != fixed:
                raise InvalidValueError(
                    f"resolution {width}x{height}; allowed for this CogVideoX model: {fixed[1]}x{fixed[0]} only"
                    " (learned positional embeddings)"
                )
            return fixed
        return super().resolution(pipe, bench_height, bench_width, height, width)

    def call_kwargs(self, pipe):
        # The pipeline defaults to 226 text tokens; the transformer's positional table fixes the count.
        return {"max_sequence_length": pipe.transformer.config.max_text_seq_length}

    def _scale(self, pipe):
        # CogVideoX 1.5 divides instead of multiplying (diffusers' invert_scale_latents).
        f = pipe.vae_scaling_factor_image
        return 1 / f if pipe.vae.config.get("invert_scale_latents") else f

    def _encode_frames(self, pipe, video_bcthw, generator):
        lat = pipe.vae.encode(video_bcthw.to(pipe.vae.device, pipe.vae.dtype)).latent_dist.sample(generator)
        return (lat * self._scale(pipe)).permute(0, 2, 1, 3, 4)  # [B, F, C, h, w]

    def encode(
        self, pipe, first_frames, prompts, num_frames, guidance_scale, generator=None, image_noise=None
    ):
        import torch

        self.check_frames(num_frames)
        device, tdtype = self._device(pipe), self._dtype(pipe)
        b, _, h, w = first_frames.shape
        cfg = guidance_scale > 1.0
        with torch.no_grad():
            pe, npe = self._encode_prompt(
                pipe, prompts, b, cfg, pipe.transformer.config.max_text_seq_length, device
            )
            image = (first_frames.to(device, torch.float32) * 2 - 1)[:, :, None]
            if image_noise is not None:  # training-time augmentation (diffusers' CogVideoX I2V LoRA script)
                image = image + image_noise
            # One encode per image, as the pipeline does, so the generator draws in the same order.
            image_latents = torch.cat(
                [self._encode_frames(pipe, image[j : j + 1], generator) for j in range(b)]
            )
            lat_frames = (num_frames - 1) // pipe.vae_scale_factor_temporal + 1
            pad = image_latents.new_zeros(b, lat_frames - 1, *image_latents.shape[2:])
            image_latents = torch.cat([image_latents, pad], dim=1).to(tdtype)
            rotary = None
            if pipe.transformer.config.use_rotary_positional_embeddings:
                rotary = pipe._prepare_rotary_positional_embeddings(h, w, lat_frames, device)
            ofs = None
            if pipe.transformer.config.ofs_embed_dim is not None:
                ofs = image_latents.new_full((1,), fill_value=2.0)
        return self._conditioning(
            first_frames,
            num_frames,
            guidance_scale,
            pe,
            npe,
            tdtype,
            image_latents=image_latents,
            rotary=rotary,
            ofs=ofs,
        )

    def initial_latents(self, pipe, cond, generator=None):

        lat_frames = (cond.num_frames - 1) // pipe.vae_scale_factor_temporal + 1
        s = pipe.vae_scale_factor_spatial
        c = pipe.transformer.config.in_channels // 2
        shape = (cond.batch_size, lat_frames, c, cond.height // s, cond.width // s)
        # The pipeline draws the noise in the prompt embeddings' dtype; we keep float32 latents and cast.
        noise = _randn(shape, generator, self._device(pipe), cond.prompt_embeds.dtype).float()
        return noise * pipe.scheduler.init_noise_sigma

    def _predict(self, net, x, timestep, embeds, cond, pipe):
        return net(
            hidden_states=x.to(self._dtype(pipe)),
            encoder_hidden_states=embeds,
            timestep=timestep,
            ofs=cond.ofs,
            image_rotary_emb=cond.rotary,
            return_dict=False,
        )[0].float()

    def step(self, pipe, nets, latents, t, i, timesteps, cond, state):
        import torch
        from diffusers import CogVideoXDPMScheduler

        sch = pipe.scheduler
        x = cond.doubled(latents)
        x = sch.scale_model_input(x, t)
        img = cond.doubled(cond.image_latents)
        x = torch.cat([x, img.to(x.dtype)], dim=2)
        embeds = cond.batched_prompt_embeds()
        pred = cond.guide(self._predict(nets[0], x, t.expand(x.shape[0]), embeds, cond, pipe))
        kwargs = {"eta": 0.0} if "eta" in inspect.signature(sch.step).parameters else {}
        if isinstance(sch, CogVideoXDPMScheduler):
            latents, state["old_pred_original_sample"] = sch.step(
                pred,
                state.get("old_pred_original_sample"),
                t,
                timesteps[i - 1] if i > 0 else None,
                latents,
                return_dict=False,
                **kwargs,
            )
        else:
            latents = sch.step(pred, t, latents, return_dict=False, **kwargs)[0]
        return latents.float()

    def decode(self, pipe, latents):
        z = latents.permute(0, 2, 1, 3, 4) / self._scale(pipe)
        video = pipe.vae.decode(z.to(pipe.vae.device, pipe.vae.dtype)).sample  # [B, 3, T, H, W] in [-1, 1]
        return _to_frames(video)

    def sft_loss(self, pipe, nets, video, cond, generator=None, shared_generator=None):
        """diffusers' examples/cogvideo/train_cogvideox_image_to_video_lora.py: v-prediction, written as an
        x0 loss weighted by 1 / (1 - alpha_bar_t)."""
        import torch

        sch = pipe.scheduler
        if sch.config.prediction_type != "v_prediction":
            raise InvalidValueError(
                f"scheduler prediction_type={sch.config.prediction_type!r}; allowed for CogVideoX SFT: 'v_prediction'"
            )
        device = self._device(pipe)
        b = video.shape[0]
        with torch.no_grad():
            x0 = self._encode_frames(pipe, video.permute(0, 2, 1, 3, 4).to(device) * 2 - 1, generator).float()
        noise = _randn(x0.shape, generator, device, torch.float32)
        timesteps = torch.randint(
            0,
            sch.config.num_train_timesteps,
            (b,),
            generator=generator,
            device=generator.device if generator is not None else "cpu",
        ).to(device)
        noisy = sch.add_noise(x0, noise, timesteps)
        x = torch.cat([noisy, cond.image_latents.to(noisy.dtype)], dim=2)
        out = self._predict(nets[0], x, timesteps, cond.prompt_embeds, cond, pipe)
        pred_x0 = sch.get_velocity(out, noisy, timesteps)  # v -> x0: sqrt(a) x_t - sqrt(1 - a) v
        alphas = sch.alphas_cumprod.to(device, torch.float32)[timesteps]
        weights = (1 / (1 - alphas)).view(b, 1, 1, 1, 1)
        return (weights * (pred_x0 - x0) ** 2).reshape(b, -1).mean(dim=1).mean()

    def sft_conditioning(self, pipe, first_frames, prompts, num_frames, generator=None):
        """The training script's first-frame noise augmentation: sigma = exp(N(-3, 0.5))."""
        import torch

        b = first_frames.shape[0]
        sigma = torch.exp(-3.0 + 0.5 * _randn((b, 1, 1, 1, 1), generator, self._device(pipe), torch.float32))
        noise = (
            _randn((b, 3, 1, *first_frames.shape[-2:]), generator, self._device(pipe), torch.float32) * sigma
        )
        return self.encode(pipe, first_frames, prompts, num_frames, 1.0, generator, image_noise=noise)


class LTXFamily(VideoFamily):
    """LTX-Video image-to-video: flow matching on packed latent tokens; the first latent frame is the
    clean image latent (timestep 0 through a per-token conditioning mask) and is never denoised."""

    name = "ltx"
    pipeline_class = "LTXImageToVideoPipeline"
    description = "LTX-Video image-to-video (LTXImageToVideoPipeline)"
    default_guidance = 3.0  # the pipeline's default
    temporal_factor = 8  # LTX's VAE compresses time by 8: valid frame counts are 8k+1
    max_sequence_length = 128  # the pipeline's default
    frame_rate = 25  # the pipeline's default; it scales the temporal RoPE

    def spatial_multiple(self, pipe):
        return pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size

    def _grid(self, pipe, cond):
        return (
            (cond.num_frames - 1) // pipe.vae_temporal_compression_ratio + 1,
            cond.height // pipe.vae_spatial_compression_ratio,
            cond.width // pipe.vae_spatial_compression_ratio,
        )

    def _unpack(self, pipe, x, cond):
        f, h, w = self._grid(pipe, cond)
        return pipe._unpack_latents(
            x, f, h, w, pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
        )

    def _pack(self, pipe, x):
        return pipe._pack_latents(
            x, pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
        )

    def _mu(self, pipe, cond) -> float:
        from diffusers.pipelines.ltx.pipeline_ltx_image2video import calculate_shift

        f, h, w = self._grid(pipe, cond)
        c = pipe.scheduler.config
        return calculate_shift(
            f * h * w,
            c.get("base_image_seq_len", 256),
            c.get("max_image_seq_len", 4096),
            c.get("base_shift", 0.5),
            c.get("max_shift", 1.15),
        )

    def encode(self, pipe, first_frames, prompts, num_frames, guidance_scale, generator=None):
        import torch

        self.check_frames(num_frames)
        device = self._device(pipe)
        b, _, h, w = first_frames.shape
        cfg = guidance_scale > 1.0
        with torch.no_grad():
            pe, pm, npe, npm = self._encode_prompt(pipe, prompts, b, cfg, self.max_sequence_length, device)
            # The pipeline's prepare_latents encodes the image and draws the noise in one go (same
            # generator order), so the initial latents are made here.
            image = (first_frames.to(device) * 2 - 1).to(pe.dtype)
            latents, mask = pipe.prepare_latents(
                image,
                b,
                pipe.transformer.config.in_channels,
                h,
                w,
                num_frames,
                torch.float32,
                device,
                generator,
                None,
            )
        return self._conditioning(
            first_frames,
            num_frames,
            guidance_scale,
            pe,
            npe,
            prompt_attention_mask=torch.cat([npm, pm]) if cfg else pm,
            image_latents=latents,
            first_frame_mask=mask,
        )

    def initial_latents(self, pipe, cond, generator=None):
        return cond.image_latents

    def set_timesteps(self, pipe, num_inference_steps, cond):
        import numpy as np

        sigmas = np.linspace(1.0, 1 / num_inference_steps, num_inference_steps)
        pipe.scheduler.set_timesteps(sigmas=sigmas, device=self._device(pipe), mu=self._mu(pipe, cond))
        return pipe.scheduler.timesteps

    def _predict(self, net, x, timestep, embeds, attention_mask, cond, pipe):
        f, h, w = self._grid(pipe, cond)
        rope = (
            pipe.vae_temporal_compression_ratio / self.frame_rate,
            pipe.vae_spatial_compression_ratio,
            pipe.vae_spatial_compression_ratio,
        )
        return net(
            hidden_states=x.to(embeds.dtype),
            encoder_hidden_states=embeds,
            timestep=timestep,
            encoder_attention_mask=attention_mask,
            num_frames=f,
            height=h,
            width=w,
            rope_interpolation_scale=rope,
            return_dict=False,
        )[0].float()

    def step(self, pipe, nets, latents, t, i, timesteps, cond, state):
        import torch

        x = cond.doubled(latents)
        mask = cond.doubled(cond.first_frame_mask)
        timestep = t.expand(x.shape[0]).unsqueeze(-1) * (1 - mask)
        embeds = cond.batched_prompt_embeds()
        pred = cond.guide(self._predict(nets[0], x, timestep, embeds, cond.prompt_attention_mask, cond, pipe))
        # The scheduler steps every latent frame but the first (the clean image), on unpacked latents.
        pred, lat = self._unpack(pipe, pred, cond), self._unpack(pipe, latents, cond)
        stepped = pipe.scheduler.step(pred[:, :, 1:], t, lat[:, :, 1:], return_dict=False)[0]
        return self._pack(pipe, torch.cat([lat[:, :, :1], stepped.float()], dim=2))

    def finalize(self, pipe, latents, cond, generator=None):
        z = self._unpack(pipe, latents, cond)
        z = pipe._denormalize_latents(
            z, pipe.vae.latents_mean, pipe.vae.latents_std, pipe.vae.config.scaling_factor
        )
        z = z.to(cond.prompt_embeds.dtype)
        if pipe.vae.config.timestep_conditioning:
            # The pipeline's decode noise at its defaults (decode_timestep = decode_noise_scale = 0): drawn, unused.
            _randn(z.shape, generator, z.device, z.dtype)
        return z

    def decode(self, pipe, latents):
        import torch

        timestep = None
        if pipe.vae.config.timestep_conditioning:
            timestep = torch.zeros(latents.shape[0], device=latents.device, dtype=latents.dtype)
        video = pipe.vae.decode(latents.to(pipe.vae.dtype), timestep, return_dict=False)[0]
        return _to_frames(video)

    def sft_loss(self, pipe, nets, video, cond, generator=None, shared_generator=None):
        import math

        import torch

        device = self._device(pipe)
        b = video.shape[0]
        with torch.no_grad():
            clip = (video.permute(0, 2, 1, 3, 4).to(device) * 2 - 1).to(pipe.vae.dtype)
            lat = pipe.vae.encode(clip).latent_dist.sample(generator)
            lat = pipe._normalize_latents(lat, pipe.vae.latents_mean, pipe.vae.latents_std)
            x0 = self._pack(pipe, lat.float())
        noise = _randn(x0.shape, generator, device, torch.float32)
        # Logit-normal sigmas, shifted like the sampler's (exponential shift at this sequence length).
        u = torch.sigmoid(_randn((b,), generator, device, torch.float32))
        mu = self._mu(pipe, cond)
        sigma = math.exp(mu) / (math.exp(mu) + (1 / u - 1))
        mask = cond.first_frame_mask.unsqueeze(-1)  # [B, S, 1]: 1 on the clean first latent frame
        noisy = mask * x0 + (1 - mask) * ((1 - sigma.view(b, 1, 1)) * x0 + sigma.view(b, 1, 1) * noise)
        timestep = (sigma * 1000).unsqueeze(-1) * (1 - cond.first_frame_mask)
        pred = self._predict(
            nets[0], noisy, timestep, cond.prompt_embeds, cond.prompt_attention_mask, cond, pipe
        )
        keep = (1 - mask).expand_as(pred)
        return ((pred - (noise - x0)) ** 2 * keep).sum() / keep.sum()


FAMILIES.register("wan", WanFamily())
FAMILIES.register("cogvideox", CogVideoXFamily())
FAMILIES.register("ltx", LTXFamily())


def supported() -> str:
    return "; ".join(f"{n}: {FAMILIES.get(n).description}" for n in FAMILIES)


def resolve_model_dir(model: str | Path) -> Path:
    """A local pipeline folder, or a hub repo id ("org/name") already in the local Hugging Face cache
    (HF_HOME / HF_HUB_CACHE). Never downloads: the cache lookup is local_files_only."""
    path = Path(model)
    if path.is_dir():
        return path
    name = str(model)
    if name.count("/") == 1 and not path.is_absolute() and not name.startswith("."):
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(name, local_files_only=True))
        except Exception as e:  # noqa: BLE001 - huggingface_hub raises several types for "not cached"
            logger.debug("%s is not in the local Hugging Face cache: %s", name, e)
    raise ModelError(
        f"model folder {name!r} does not exist; pass a local diffusers pipeline folder"
        " or a repo id already in the local Hugging Face cache"
    )


def detect_family(model_dir: str | Path) -> VideoFamily:
    """The family of a local diffusers pipeline folder, from model_index.json's `_class_name`."""
    model_dir = resolve_model_dir(model_dir)
    index = model_dir / "model_index.json"
    if not index.is_file():
        raise ModelError(
            f"{model_dir}: no model_index.json; not a diffusers pipeline folder (save_pretrained writes one)"
        )
    try:
        class_name = json.loads(index.read_text()).get("_class_name")
    except (json.JSONDecodeError, AttributeError) as e:
        raise ModelError(f"{index}: unreadable ({e})") from e
    for name in FAMILIES:
        family = FAMILIES.get(name)
        if family.pipeline_class == class_name:
            return family
    raise ModelError(
        f"{model_dir}: pipeline class {class_name!r} is not supported; supported families: {supported()}"
    )


def require_train_deps() -> None:
    for module, package in (
        ("diffusers", "diffusers"),
        ("peft", "peft"),
        ("accelerate", "accelerate"),
        ("transformers", "transformers"),
    ):
        try:
            __import__(module)
        except ImportError:
            raise MissingDependencyError(package, "train", "post-training and sampling") from None
