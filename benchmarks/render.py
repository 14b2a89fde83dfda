"""Benchmark `render_motion`: frames per second at 640x480 to .mp4 on this machine (goal: > 20).

Renders a real clip (the longest of pybullet's DeepMimic clips, looped to 400 frames) to
H.264, and times the renderer alone (no encoding) for comparison, and the pybullet
TinyRenderer fallback alone (100 frames). Three runs each.

Run from the repository root:
    python benchmarks/render.py [--frames 400] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from myocli.data.convert import ConvertOptions, convert, expand_sources
    from myocli.render.api import render_frames, render_motion

    clip = max(convert(expand_sources(["@pybullet"]), ConvertOptions()).sequences, key=len).motion
    motion = np.concatenate([clip] * (args.frames // len(clip) + 1))[: args.frames]
    result = {"frames": args.frames, "size": "640x480", "mp4_fps": [], "render_only_fps": [], "pybullet_render_only_fps": []}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(3):
            start = time.perf_counter()
            render_motion(motion, Path(tmp) / f"bench{run}.mp4", size=(640, 480))
            result["mp4_fps"].append(args.frames / (time.perf_counter() - start))
            start = time.perf_counter()
            for _ in render_frames([motion], size=(640, 480)):
                pass
            result["render_only_fps"].append(args.frames / (time.perf_counter() - start))
            start = time.perf_counter()
            for _ in render_frames([motion[:100]], size=(640, 480), renderer="pybullet"):
                pass
            result["pybullet_render_only_fps"].append(100 / (time.perf_counter() - start))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key in ("mp4_fps", "render_only_fps", "pybullet_render_only_fps"):
            print(f"{key}: " + ", ".join(f"{v:.1f}" for v in result[key]))


if __name__ == "__main__":
    main()
