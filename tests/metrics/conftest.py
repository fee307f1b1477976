"""A tiny real bench for the scoring tests: one test/id clip per primitive, 256x256x32 (the
benchmark's own resolution: the accel_ratio-within-2% check needs the default pixel scale)."""

from __future__ import annotations

import pytest


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
