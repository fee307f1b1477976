"""Reward fine-tuning does what it claims: gradients stop K steps from the end (DRaFT-K), and a few
steps on a fixed batch (fixed noise) lower that batch's kinematic penalty."""

from __future__ import annotations

import pytest
import torch
from newtonbench.metrics.rewards import build_reward
from posttrain_fixtures import VARIANTS
from torch.utils.data import default_collate

from newtonbench.dataset import open_dataset
from newtonbench.posttrain.config import TrainConfig
from newtonbench.posttrain.data import BenchClips
from newtonbench.posttrain.families import detect_family
from newtonbench.posttrain.loop import add_lora, reward_step, sft_step


def _setup(tiny_model, bench, variant, **cfg):
    path = tiny_model(variant)
    family = detect_family(path)
    pipe = family.load(path, torch.float32)
    config = TrainConfig(model=str(path), bench=str(bench), out="unused", mode="reward", rank=8, **cfg)
    nets = add_lora(family, pipe, config)
    h, w = family.resolution(pipe, 32, 32)
    data = BenchClips(open_dataset(bench), h, w, 9, with_video=False)
    batch = default_collate([data[i] for i in range(len(data))])
    return family, pipe, config, nets, batch


@pytest.mark.parametrize(("k", "high_noise_trains"), [(1, False), (2, True)])
def test_gradients_reach_only_the_last_k_denoising_steps(k, high_noise_trains, tiny_model, bench):
    # Wan 2.2 A14B-style: 2 UniPC steps at t = 999 and 750 around boundary_ratio 0.875: the first runs
    # `transformer` (high noise), the last `transformer_2`.
    family, pipe, config, nets, batch = _setup(
        tiny_model, bench, "wan2.2", inference_steps=2, backprop_steps=k
    )
    reward = build_reward("kinematic=1")
    loss, _ = reward_step(family, pipe, nets, batch, config, 9, torch.Generator().manual_seed(0), reward, 1.0)
    loss.backward()

    def grad_sum(net):
        return sum(
            float(p.grad.abs().sum())
            for n, p in net.named_parameters()
            if "lora_B" in n and p.grad is not None
        )

    assert grad_sum(nets[1]) > 0
    assert (grad_sum(nets[0]) > 0) == high_noise_trains


@pytest.mark.parametrize("variant", ["wan2.1", "cogvideox"])
def test_a_few_reward_steps_lower_the_kinematic_penalty_of_a_fixed_batch(variant, tiny_model, bench):
    family, pipe, config, nets, batch = _setup(
        tiny_model, bench, variant, inference_steps=3, backprop_steps=1
    )
    reward = build_reward("kinematic=1")
    params = [p for net in nets for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-2)

    def step(train: bool) -> float:
        # Same noise every time (generator seeded alike): only the LoRA weights change the samples.
        with torch.set_grad_enabled(train):
            loss, logs = reward_step(
                family, pipe, nets, batch, config, 9, torch.Generator().manual_seed(0), reward, 1.0
            )
        if train:
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        assert torch.isfinite(loss)
        return logs["reward_kinematic"]

    before = step(train=False)
    for _ in range(5):
        step(train=True)
    after = step(train=False)
    assert after < 0.85 * before, (before, after)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_bf16_weights_train_in_both_modes(variant, tiny_model, bench):
    """The GPU recipe's dtypes on CPU: bf16 transformer and text encoder (Wan: VAE and CLIP in float32),
    float32 LoRA, bf16 autocast as accelerate's mixed_precision="bf16" applies."""
    path = tiny_model(variant)
    family = detect_family(path)
    pipe = family.load(path, torch.bfloat16)
    assert pipe.transformer.dtype == torch.bfloat16
    config = TrainConfig(
        model=str(path), bench=str(bench), out="unused", mode="reward", rank=4, inference_steps=2
    )
    nets = add_lora(family, pipe, config)
    h, w = family.resolution(pipe, 32, 32)
    batch = default_collate([BenchClips(open_dataset(bench), h, w, 9)[0]])
    reward = build_reward("kinematic=1,mass=0.5,accel=1")
    for step in (sft_step, reward_step):
        extra = (reward, 5.0) if step is reward_step else ()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss, _ = step(family, pipe, nets, batch, config, 9, torch.Generator().manual_seed(0), *extra)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        loss.backward()
        grads = [p.grad for net in nets for p in net.parameters() if p.grad is not None]
        assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0
        for net in nets:
            net.zero_grad(set_to_none=True)
