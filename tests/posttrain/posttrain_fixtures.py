"""Shared constants of the post-training tests (a uniquely named module: `import conftest` is ambiguous
once several test folders have one)."""

from __future__ import annotations

import functools

from newtonbench.posttrain import testing

# Variant name -> builder: one tiny pipeline per released checkpoint layout (testing.build_tiny_wan).
VARIANTS = {
    "wan2.1": testing.build_tiny_wan,
    "wan2.2": functools.partial(testing.build_tiny_wan, kind="2.2-a14b"),
    "wan2.2-ti2v": functools.partial(testing.build_tiny_wan, kind="2.2-ti2v"),
    "cogvideox": testing.build_tiny_cogvideox,
    "ltx": testing.build_tiny_ltx,
}
VARIANT_FAMILY = {
    "wan2.1": "wan",
    "wan2.2": "wan",
    "wan2.2-ti2v": "wan",
    "cogvideox": "cogvideox",
    "ltx": "ltx",
}


def cli_ok(result) -> None:
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
