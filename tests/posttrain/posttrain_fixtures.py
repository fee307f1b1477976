"""Shared constants of the post-training tests (a uniquely named module: `import conftest` is ambiguous
once several test folders have one)."""

from __future__ import annotations

import functools

from newtonbench.posttrain import testing

# Variant name -> builder. Wan 2.1 (one transformer, CLIP image encoder), Wan 2.2 A14B (two experts
# split at boundary_ratio), CogVideoX 1.0 I2V (learned positional embeddings, v-prediction DDIM).
VARIANTS = {
    "wan2.1": testing.build_tiny_wan,
    "wan2.2": functools.partial(testing.build_tiny_wan, two_experts=True),
    "cogvideox": testing.build_tiny_cogvideox,
}
VARIANT_FAMILY = {"wan2.1": "wan", "wan2.2": "wan", "cogvideox": "cogvideox"}


def cli_ok(result) -> None:
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
