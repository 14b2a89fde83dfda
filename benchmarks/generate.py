"""Benchmark `myo generate`: seconds per generated 4-second motion, model load excluded and included.

Times, for a registered language model, (1) loading it with its tokenizer (checkpoint
verification, T5 and VQ-VAE construction), (2) one text-to-motion sample of 4 seconds
(20 codes at 20 fps / 4): prompt, constrained sampling with the KV cache, VQ-VAE decoding
and positions on the floor, and (3) a whole `myo generate` command in a fresh process
(interpreter start, imports, load, sample, .npy written). MotionGPT reports about 0.2 s per
motion on a GPU, MLD 0.217 s.

Run from the repository root (the model must be in ./checkpoints or $MYO_HOME):
    python benchmarks/generate.py --model lm/quality-it [--samples 10] [--device cpu|cuda] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

CAPTIONS = ["a person does one squat", "a person walks forward", "a person kicks forward once with the left leg",
            "a person hops once on both legs", "a person throws a basketball"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    from myocli.lm.engine import LMEngine, Sampling

    loads = []
    for _ in range(3):
        start = time.perf_counter()
        engine = LMEngine.load(args.model)
        loads.append(time.perf_counter() - start)
    engine.lm.model.to(args.device)
    engine.tokenizer.to(args.device)
    sampling = Sampling(temperature=1.0, top_p=0.95, seed=0)
    engine.text_to_motion(CAPTIONS[0], args.seconds, sampling)  # warm-up
    per_motion = []
    for sample in range(args.samples):
        start = time.perf_counter()
        motion = engine.text_to_motion(CAPTIONS[sample % len(CAPTIONS)], args.seconds, sampling, sample)
        if args.device == "cuda":
            torch.cuda.synchronize()
        per_motion.append(time.perf_counter() - start)
    assert len(motion) == round(args.seconds * engine.fps)

    commands = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(3):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "myocli", "generate", CAPTIONS[run], "--model", args.model, "--seconds",
                            str(args.seconds), "-o", f"{tmp}/m{run}"], check=True, capture_output=True, env=os.environ)  # fmt: skip
            commands.append(time.perf_counter() - start)

    result = {
        "model": engine.lm.ref.label,
        "parameters_m": round(sum(p.numel() for p in engine.lm.model.parameters()) / 1e6, 2),
        "device": args.device,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "seconds_of_motion": args.seconds,
        "load_s": [round(x, 3) for x in loads],
        "per_motion_s_median": round(statistics.median(per_motion), 4),
        "per_motion_s_range": [round(min(per_motion), 4), round(max(per_motion), 4)],
        "whole_command_s": [round(x, 2) for x in commands],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['model']} ({result['parameters_m']} M parameters) on {args.device}, {result['machine']}")
    print(f"  load (verify + build):        {', '.join(f'{x:.2f}' for x in loads)} s")
    print(f"  per {args.seconds:g}-second motion:      median {result['per_motion_s_median']:.3f} s "
          f"(range {result['per_motion_s_range'][0]:.3f}-{result['per_motion_s_range'][1]:.3f}, {args.samples} samples)")  # fmt: skip
    print(f"  whole `myo generate` command: {', '.join(f'{x:.2f}' for x in commands)} s")


if __name__ == "__main__":
    main()
