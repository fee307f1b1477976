"""A tiny real bench for the scoring tests: one test/id clip per primitive, 256x256x32 (the
benchmark's own resolution: the accel_ratio-within-2% check needs the default pixel scale)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: on the shared 2-core machine under load, two intra-op threads measured 8-14x slower
    (thread hand-offs) than one. Modules opt in with pytestmark = pytest.mark.usefixtures(...)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def score_bench(tmp_path_factory):
    from newtonbench.generators.dataset_writer import GenerateConfig, generate

    out = tmp_path_factory.mktemp("score_bench") / "bench"
    generate(GenerateConfig(out=out, splits=("test",), distributions=("id",), num_clips=1, seed=0), progress=False)
    return out


@pytest.fixture(scope="session")
def score_ds(score_bench):
    from newtonbench.dataset import open_dataset

    return open_dataset(score_bench)
