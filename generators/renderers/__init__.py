"""Renderers by name: `tiny` (default, CPU) and `egl` (GPU, where the machine has EGL)."""

from __future__ import annotations

from newtonbench.errors import UnknownNameError

RENDERERS = ("tiny", "egl")


def get_renderer(name: str):
    """An instance of the named renderer; raises RendererUnavailableError if it cannot run here."""
    if name == "tiny":
        from newtonbench.generators.renderers.tiny import TinyRenderer

        return TinyRenderer()
    if name == "egl":
        from newtonbench.generators.renderers.egl import EGLRenderer

        EGLRenderer.check_available()
        return EGLRenderer()
    raise UnknownNameError("renderer", name, RENDERERS)
