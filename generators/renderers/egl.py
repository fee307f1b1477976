"""PyBullet's EGL renderer plugin: OpenGL without a display, fast on a GPU (`--renderer egl`).

It needs the eglRenderer plugin that ships with the pybullet wheel and a working EGL driver
(libEGL from the GPU vendor). Where either is missing, `check_available` raises
RendererUnavailableError naming what is missing, before any clip is started.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pkgutil
import sys

from newtonbench.errors import RendererUnavailableError
from newtonbench.generators.renderers.base import PyBulletRenderer


def _plugin_file() -> str | None:
    loader = pkgutil.get_loader("eglRenderer")
    return loader.get_filename() if loader is not None else None


@contextlib.contextmanager
def _quiet_stdout():
    """The EGL plugin prints its driver banner from C straight to file descriptor 1; keep it out of
    the CLI's output (and of anything piping it) by pointing fd 1 at /dev/null meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class EGLRenderer(PyBulletRenderer):
    name = "egl"
    pixel_offset = (0.0, 0.0)

    def __init__(self):
        self._client: int | None = None

    def _connect(self):
        """One client per renderer (so per worker process), emptied between clips: opening an EGL
        context costs about a second, against milliseconds for a TinyRenderer client, so here the
        per-clip client of the other renderers would dominate the run time."""
        import pybullet as p

        if self._client is not None:
            p.resetSimulation(physicsClientId=self._client)
            return p, self._client
        client = p.connect(p.DIRECT)
        plugin = _plugin_file()
        if plugin is None:
            p.disconnect(client)
            raise RendererUnavailableError("renderer 'egl' is not available: this pybullet build has no eglRenderer "
                                           "plugin; allowed here: tiny")
        with _quiet_stdout():
            loaded = p.loadPlugin(plugin, "_eglRendererPlugin", physicsClientId=client)
        if loaded < 0:
            p.disconnect(client)
            raise RendererUnavailableError("renderer 'egl' is not available: the EGL plugin failed to load (no GPU or "
                                           "no libEGL driver); allowed here: tiny")
        self._client = client
        atexit.register(self.close)  # quietly, before pybullet tears the context down noisily
        return p, client

    def _release(self, p, client: int) -> None:
        pass  # kept for the next clip; closed by close() or at exit

    def close(self) -> None:
        if self._client is not None:
            import pybullet as p

            with _quiet_stdout():
                p.disconnect(self._client)
            self._client = None

    def _flag(self, p) -> int:
        return p.ER_BULLET_HARDWARE_OPENGL

    def render(self, *args, **kwargs):
        with _quiet_stdout():  # the plugin also prints when its context is torn down
            return super().render(*args, **kwargs)

    @classmethod
    def check_available(cls) -> None:
        r = cls()
        r._connect()
        r.close()
