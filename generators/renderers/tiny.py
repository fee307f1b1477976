"""PyBullet's TinyRenderer: software rasteriser, CPU only, no display needed. The default."""

from __future__ import annotations

from newtonbench.generators.renderers.base import PyBulletRenderer


class TinyRenderer(PyBulletRenderer):
    name = "tiny"

    def _flag(self, p) -> int:
        return p.ER_TINY_RENDERER
