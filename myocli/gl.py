"""Importing the two physics engines the one right way.

MuJoCo reads MUJOCO_GL at import, so every myo module that needs mujoco imports it through
`load_mujoco()`: a simulation imported before a render would otherwise leave the renderer
without a usable GL context on a headless server (the process aborts). PyBullet prints a
build-time banner from its C code at import, which `load_pybullet()` keeps off the terminal.
"""

from __future__ import annotations

import importlib.util
import os
import sys


def choose_gl() -> None:
    """A Linux server without a display renders through EGL; elsewhere MuJoCo's default stands.

    Triton (shipped with CUDA builds of PyTorch) crashes the process when it is loaded after
    Mesa's GL libraries (measured: torch 2.15.0+cu132, Mesa EGL), which a generator that renders
    and then keeps using torch would hit; loaded first, both work. So load it first if present.
    """
    if sys.platform.startswith("linux") and "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"
    if importlib.util.find_spec("triton") is not None:
        import triton  # noqa: F401


def load_mujoco():
    """The mujoco module, imported after choosing the GL backend."""
    choose_gl()
    import mujoco

    return mujoco


def load_pybullet():
    """The pybullet module, imported with its C-level banner on stderr silenced."""
    if "pybullet" in sys.modules:
        return sys.modules["pybullet"]
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import pybullet
    finally:
        os.dup2(saved, 2)
        os.close(null)
        os.close(saved)
    return pybullet
