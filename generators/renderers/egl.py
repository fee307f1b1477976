"""PyBullet's EGL renderer plugin: OpenGL without a display, fast on a GPU (`--renderer egl`).

It needs the eglRenderer plugin that ships with the pybullet wheel and a working EGL driver
(libEGL from the GPU vendor). Where either is missing, `check_available` raises
RendererUnavailableError naming what is missing, before any clip is started.
"""

from __future__ import annotations

import pkgutil

from newtonbench.generators.renderers.base import PyBulletRenderer

from newtonbench.errors import RendererUnavailableError


def _plugin_file() -> str | None:
    loader = pkgutil.get_loader("eglRenderer")
    return loader.get_filename() if loader is not None else None


class EGLRenderer(PyBulletRenderer):
    name = "egl"
    pixel_offset = (0.0, 0.0)

    def _connect(self):
        import pybullet as p

        client = p.connect(p.DIRECT)
        plugin = _plugin_file()
        if plugin is None:
            p.disconnect(client)
            raise RendererUnavailableError("renderer 'egl' is not available: this pybullet build has no eglRenderer "
                                           "plugin; allowed here: tiny")
        if p.loadPlugin(plugin, "_eglRendererPlugin", physicsClientId=client) < 0:
            p.disconnect(client)
            raise RendererUnavailableError("renderer 'egl' is not available: the EGL plugin failed to load (no GPU or "
                                           "no libEGL driver); allowed here: tiny")
        return p, client

    def _flag(self, p) -> int:
        return p.ER_BULLET_HARDWARE_OPENGL

    @classmethod
    def check_available(cls) -> None:
        p, client = cls()._connect()
        p.disconnect(client)
