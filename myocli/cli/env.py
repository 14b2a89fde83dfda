"""`myo env`: the facts a bug report needs, in one place (as `accelerate env` gives).

Versions of the libraries myo runs on, the devices torch sees and whether bfloat16 works on them,
how `myo render` would draw (the GL backend MuJoCo gets, or pybullet's software fallback), the
video encoder, and where the checkpoint registry is and what is in it. Every probe catches its
own failure and reports it as a fact: a broken GL or CUDA install is what a user runs this for.
"""

from __future__ import annotations

import json
import os
import platform
import sys

import typer

# The distributions whose versions decide how myo behaves (import name differs for some).
PACKAGES = ("torch", "accelerate", "transformers", "safetensors", "numpy", "h5py", "mujoco", "pybullet",
            "gymnasium", "imageio-ffmpeg", "typer", "gradio")  # fmt: skip
ENVIRONMENT_VARIABLES = ("MYO_HOME", "MYO_DEBUG", "CUDA_VISIBLE_DEVICES", "MUJOCO_GL", "PYOPENGL_PLATFORM", "DISPLAY",
                         "OMP_NUM_THREADS", "IMAGEIO_FFMPEG_EXE")  # fmt: skip


def env(as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout.")) -> None:
    """Print the versions, devices, renderer, video encoder and registry that myo sees here.

    Paste its output into a bug report. Example: myo env --json | jq .devices
    """
    facts = collect()
    if as_json:
        sys.stdout.write(json.dumps(facts, indent=2) + "\n")
    else:
        sys.stdout.write(as_text(facts))


def collect() -> dict:
    """Every fact, as one JSON-ready dict."""
    from myocli import __version__

    variables = {
        name: os.environ[name] for name in ENVIRONMENT_VARIABLES if name in os.environ
    }  # before the probes set any
    return {
        "myo": {"version": __version__, "location": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))},
        "python": {"version": platform.python_version(), "executable": sys.executable, "platform": platform.platform()},
        "packages": package_versions(),
        "devices": devices(),
        "render": renderer(),
        "ffmpeg": ffmpeg(),
        "registry": registry_summary(),
        "environment": variables,
    }


def package_versions() -> dict:
    """Installed version of each package, or None; read from the metadata, nothing is imported."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def devices() -> dict:
    """The CPU, each CUDA device torch sees, and whether bfloat16 runs on each (tried, not assumed)."""
    import torch

    cpu = {"cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
           "torch_threads": torch.get_num_threads(), "bf16": _bf16_works("cpu")}  # fmt: skip
    cuda = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            cuda.append({
                "index": index, "name": properties.name, "memory_gib": round(properties.total_memory / 2**30, 1),
                "capability": f"{properties.major}.{properties.minor}", "bf16": _bf16_works(f"cuda:{index}"),
            })  # fmt: skip
    return {
        "torch_cuda_build": torch.version.cuda,  # None for a CPU-only build of torch
        "cuda_available": torch.cuda.is_available(),
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "cpu": cpu,
        "cuda": cuda,
        "mps_available": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
        "training_device": "cuda" if cuda else "cpu",  # what the trainers' Accelerator picks
    }


def _bf16_works(device: str) -> bool | str:
    """True when a bfloat16 matmul under autocast runs on the device, else the error it gave."""
    import torch

    try:
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16):
            result = torch.ones(8, 8, device=device) @ torch.ones(8, 8, device=device)
        return bool(result.dtype == torch.bfloat16 and float(result[0, 0]) == 8.0)
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return f"no: {_first_line(exc)}"


def renderer() -> dict:
    """The GL backend MuJoCo is given and the renderer `myo render` would use, found by opening it."""
    import ctypes.util

    from myocli.gl import choose_gl

    choose_gl()  # sets MUJOCO_GL as `myo render` would
    facts = {"mujoco_gl": os.environ.get("MUJOCO_GL", "(MuJoCo's default)"),
             "libraries": {name: ctypes.util.find_library(name) for name in ("EGL", "OSMesa", "GL")}}  # fmt: skip
    try:
        from myocli.render.scene import BodyRenderer

        BodyRenderer(32, 32).close()
        facts["renderer"] = f"mujoco ({facts['mujoco_gl']})"
    except Exception as exc:  # noqa: BLE001 - the reason MuJoCo cannot draw is the fact
        facts["renderer"] = "pybullet TinyRenderer (software, slower)"
        facts["mujoco_problem"] = _first_line(exc)
    return facts


def ffmpeg() -> dict:
    """The ffmpeg `myo render` and `--mp4` would run, and its version."""
    import subprocess

    try:
        from imageio_ffmpeg import get_ffmpeg_exe

        path = get_ffmpeg_exe()
        first = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=20).stdout.splitlines()
        return {"path": path, "version": first[0] if first else None}
    except Exception as exc:  # noqa: BLE001
        return {"path": None, "problem": _first_line(exc)}


def registry_summary() -> dict:
    """Where the registry is, and each version in it and among the built-in models, with its status."""
    from myocli import registry

    home = registry.home()
    rows = registry.list_all()
    return {
        "home": str(home.resolve()),
        "home_exists": home.is_dir(),
        "builtin": str(registry.BUILTIN),
        "checkpoints": [f"{row['name']}@{row['version']} {row['status']}" for row in rows],
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def as_text(facts: dict) -> str:
    """The facts as `- key: value` lines under one heading per section, ready to paste."""
    lines = []
    for section, values in facts.items():
        lines.append(f"{section}:")
        missing = "not installed" if section == "packages" else "none"
        lines += [f"  - {key}: {_plain(value, missing)}" for key, value in values.items()] if values else ["  (none)"]
    return "\n".join(lines) + "\n"


def _plain(value, missing: str = "none") -> str:
    if isinstance(value, list):
        return "none" if not value else "\n" + "\n".join(f"      {_plain(item)}" for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}={_plain(item)}" for key, item in value.items())
    return missing if value is None else str(value)
