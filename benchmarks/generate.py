"""Benchmark `myo generate`: seconds per generated 4-second motion, model load excluded and included.

Times, for a registered language model or SSM generator, (1) loading it (checkpoint
verification and construction; for an LM also its VQ-VAE tokenizer), (2) one text-to-motion
sample of 4 seconds: for an LM the prompt, constrained sampling with the KV cache and VQ-VAE
decoding; for an SSM the guided flow integration (--steps, default the model's) with the
parallel or the recurrent scan (--scan) and the physics refinement (--refine-steps); then positions on the floor; and (3) a whole
`myo generate` command in a fresh process (interpreter start, imports, load, sample, .npy
written). MotionGPT reports about 0.2 s per motion on a GPU, MLD 0.217 s, Motion Mamba 0.058 s.

Run from the repository root (the model must be in ./checkpoints or $MYO_HOME):
    python benchmarks/generate.py --model lm/quality-it [--samples 10] [--device cpu|cuda] [--json]
    python benchmarks/generate.py --model ssm/quality-phys [--steps 16] [--scan parallel|recurrent]
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
    parser.add_argument("--steps", type=int, default=None, help="SSM: flow steps (default: the model's)")
    parser.add_argument("--refine-steps", type=int, default=None, help="SSM: physics refinement steps (default: the model's)")
    parser.add_argument("--scan", default="parallel", choices=["parallel", "recurrent"], help="SSM: how the scan runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    from myocli import registry

    kind = registry.resolve(args.model).kind
    loads = []
    for _ in range(3):
        start = time.perf_counter()
        engine, generate, model = _load(kind, args.model, args)
        loads.append(time.perf_counter() - start)
    engine.to(args.device)
    generate(CAPTIONS[0], 0)  # warm-up
    per_motion = []
    for sample in range(args.samples):
        start = time.perf_counter()
        motion = generate(CAPTIONS[sample % len(CAPTIONS)], sample)
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
        "model": args.model,
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "device": args.device,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "seconds_of_motion": args.seconds,
        "ssm_steps_scan_refine": [args.steps, args.scan, args.refine_steps] if kind == "ssm" else None,
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


def _load(kind: str, spec: str, args):
    """(engine, generate(caption, sample) -> positions, the network whose parameters are counted)."""
    if kind == "ssm":
        from myocli.ssm.engine import SSMEngine

        engine = SSMEngine.load(spec)

        def make(caption, sample):
            return engine.text_to_motion(caption, args.seconds, sample, args.steps, scan=args.scan, refine_steps=args.refine_steps)

        return engine, make, engine.model
    from myocli.lm.engine import LMEngine, Sampling

    engine = LMEngine.load(spec)
    sampling = Sampling(seed=0)
    return engine, lambda caption, sample: engine.text_to_motion(caption, args.seconds, sampling, sample), engine.lm.model


if __name__ == "__main__":
    main()
