"""Benchmark tokenizer training throughput and how much of a step waits for data.

Runs `myo tokenizer train` for a fixed number of steps per setting, in a throw-away
registry, and reads what the trainer recorded in the manifest: samples per second over
the whole loop, and the fraction of loop time spent fetching batches (goal: under 5%).

Settings: the `tiny` preset (CPU), the `paper` preset (MotionGPT sizes), each in fp32 and
bf16 autocast; on a CUDA machine the same presets run on the GPU.

Run from the repository root:
    python benchmarks/tokenizer_step.py [--data datasets/x.h5] [--steps 100] [--json]
Without --data it converts pybullet's 15 clips (and their mirrors) into a temporary file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def make_data(folder: Path) -> Path:
    from myocli.data.convert import ConvertOptions, convert, expand_sources
    from myocli.data.h5 import write_dataset

    report = convert(expand_sources(["@pybullet"]), ConvertOptions(mirror=True))
    path = folder / "pybullet.h5"
    write_dataset(path, report.sequences, 20.0)
    return path


def run(data: Path, preset: str, steps: int, mixed_precision: str, name: str) -> dict:
    """One training run in its own process (Accelerate's settings are fixed per process)."""
    from myocli import registry

    every = str(steps)
    command = [sys.executable, "-m", "myocli", "tokenizer", "train", "--data", str(data), "--config", preset, "--name", name,
               "--max-steps", every, "--log-every", every, "--eval-every", every, "--save-every", every,
               "--mixed-precision", mixed_precision]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    training = registry.read_manifest(registry.resolve(f"tokenizer/{name}").path)["training"]
    return {
        "preset": preset,
        "mixed_precision": mixed_precision,
        "device": training["device"],
        "batch_size": training["batch_size"],
        "steps": training["steps_done"],
        "seconds": training["seconds"],
        "samples_per_second": training["samples_per_second"],
        "data_wait_fraction": training["data_wait_fraction"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="myo28 .h5 training set (default: pybullet's clips)")
    parser.add_argument("--steps", type=int, default=100, help="steps for the tiny preset (the paper preset runs a tenth)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MYO_HOME"] = str(Path(tmp) / "home")
        data = args.data or make_data(Path(tmp))
        rows = []
        for preset, steps in (("tiny", args.steps), ("paper", max(args.steps // 10, 3))):
            for mixed in ("no", "bf16"):
                rows.append(run(data, preset, steps, mixed, f"bench-{preset}-{mixed}"))
                print(f"{rows[-1]}", file=sys.stderr)
    result = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "runs": rows,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"torch {result['torch']}, {result['threads']} threads, GPU: {result['cuda'] or 'none'}")
    print(f"{'preset':8} {'precision':9} {'device':8} {'batch':>5} {'steps':>5} {'samples/s':>10} {'data wait':>9}")
    for r in rows:
        print(f"{r['preset']:8} {r['mixed_precision']:9} {r['device']:8} {r['batch_size']:>5} {r['steps']:>5} "
              f"{r['samples_per_second']:>10.1f} {100 * r['data_wait_fraction']:>8.2f}%")  # fmt: skip


if __name__ == "__main__":
    main()
