"""Family adapters: detection, sizes, and the known answer that matters most — our differentiable
denoising loop reproduces the pipeline's own `__call__` bit for bit, so what we train is what users sample."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from posttrain_fixtures import VARIANT_FAMILY, VARIANTS

from newtonbench.dataset import open_dataset
from newtonbench.errors import InvalidValueError
from newtonbench.posttrain.config import TrainConfig
from newtonbench.posttrain.data import BenchClips
from newtonbench.posttrain.families import FAMILIES, ModelError, detect_family
from newtonbench.posttrain.loop import add_lora


def test_every_registered_family_has_a_tiny_test_model():
    assert set(VARIANT_FAMILY.values()) == set(FAMILIES.names())


def test_detect_family_errors(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        detect_family(tmp_path / "nope")
    with pytest.raises(ModelError, match="no model_index.json"):
        detect_family(tmp_path)
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableVideoDiffusionPipeline"}))
    with pytest.raises(ModelError) as e:
        detect_family(tmp_path)
    msg = str(e.value)
    assert "'StableVideoDiffusionPipeline' is not supported" in msg
    assert "WanImageToVideoPipeline" in msg and "CogVideoXImageToVideoPipeline" in msg
    assert "\n" not in msg


def test_frame_counts_are_4k_plus_1():
    fam = FAMILIES.get("wan")
    assert [fam.frames_at_most(n) for n in (1, 9, 12, 32, 33)] == [1, 9, 9, 29, 33]
    assert [fam.frames_at_least(n) for n in (1, 9, 10, 32, 33)] == [1, 9, 13, 33, 33]
    with pytest.raises(InvalidValueError, match="frames=10"):
        fam.check_frames(10)


def _load(tiny_model, variant):
    path = tiny_model(variant)
    fam = detect_family(path)
    assert fam.name == VARIANT_FAMILY[variant]
    return fam, fam.load(path, torch.float32)


def _nets(fam, pipe):
    return [getattr(pipe, n) for n in fam.denoiser_names(pipe)]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_training_loop_sampler_reproduces_pipeline_call(variant, tiny_model, bench):
    fam, pipe = _load(tiny_model, variant)
    ds = open_dataset(bench)
    h, w = fam.resolution(pipe, 32, 32)
    item = BenchClips(ds, h, w, 9, with_video=False)[0]
    first, prompt = item["first_frame"][None], item["prompt"]
    guidance = 4.0  # exercises classifier-free guidance
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        cond = fam.encode(pipe, first, [prompt], 9, guidance, gen)
        mine = fam.decode(pipe, fam.generate(pipe, _nets(fam, pipe), cond, 3, 0, gen))
    image = Image.fromarray((first[0].permute(1, 2, 0) * 255).round().byte().numpy())
    ref = pipe(
        image=image,
        prompt=prompt,
        height=h,
        width=w,
        num_frames=9,
        num_inference_steps=3,
        guidance_scale=guidance,
        generator=torch.Generator().manual_seed(3),
        output_type="pt",
        **fam.call_kwargs(pipe),
    ).frames
    assert mine.shape == ref.shape == (1, 9, 3, h, w)
    assert torch.allclose(mine, ref, atol=1e-5), (mine - ref).abs().max()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_sft_loss_is_finite_and_trains_only_lora(variant, tiny_model, bench):
    fam, pipe = _load(tiny_model, variant)
    cfg = TrainConfig(model=str(tiny_model(variant)), bench=str(bench), out="unused", rank=4)
    nets = add_lora(fam, pipe, cfg)
    h, w = fam.resolution(pipe, 32, 32)
    item = BenchClips(open_dataset(bench), h, w, 9)[0]
    gen = torch.Generator().manual_seed(0)
    cond = fam.sft_conditioning(pipe, item["first_frame"][None], [item["prompt"]], 9, gen)
    loss = fam.sft_loss(pipe, nets, item["video"][None], cond, gen)
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    grads = {n: p.grad for net in nets for n, p in net.named_parameters() if p.grad is not None}
    assert grads and all("lora_" in n for n in grads)
    # LoRA B starts at zero, so the first gradient lands on B (A's is zero through B = 0).
    assert any(g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)
    frozen = [p for name in ("vae", "text_encoder") for p in getattr(pipe, name).parameters()]
    assert all(p.grad is None for p in frozen)


def test_cogvideox_learned_positions_fix_the_resolution(tiny_model):
    fam, pipe = _load(tiny_model, "cogvideox")
    assert fam.resolution(pipe, 256, 256) == (32, 32)  # the transformer's sample size, whatever the bench
    with pytest.raises(InvalidValueError, match="allowed for this CogVideoX model: 32x32"):
        fam.resolution(pipe, 256, 256, 64, 64)


def test_wan_resolution_follows_the_bench_on_the_model_grid(tiny_model):
    fam, pipe = _load(tiny_model, "wan2.1")
    assert fam.resolution(pipe, 256, 200) == (256, 192)  # multiples of vae 8 x patch 2
    with pytest.raises(InvalidValueError, match="multiple of 16"):
        fam.resolution(pipe, 256, 256, 40, 32)


def test_repo_id_resolves_from_the_local_hugging_face_cache_only(tmp_path, monkeypatch, tiny_model):
    import shutil

    import huggingface_hub.constants

    from newtonbench.posttrain.families import resolve_model_dir

    repo = tmp_path / "hub" / "models--acme--tiny-cog"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_model("cogvideox"), snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model_dir("acme/tiny-cog") == snapshot
    assert detect_family("acme/tiny-cog").name == "cogvideox"
    with pytest.raises(ModelError, match="local Hugging Face cache"):
        detect_family("acme/not-cached")
