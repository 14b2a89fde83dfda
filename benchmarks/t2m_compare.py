"""Compare text-to-motion generators on one held-out set: physical plausibility and speed.

For every clip of --data (at least one second long) each model generates a motion from the
clip's first caption at the clip's own length (for a language model the length is imposed
through the codes, for an SSM through the patches), with seed = the clip's index. Reported
per model, next to the real clips: foot skating ratio (GMD/OmniControl, docs/evaluation.md (foot skating)),
penetration and floating in mm, bone-length error in mm (the measures of `myo lm eval`),
and seconds per 4-second motion on this machine (median of --timing samples, load excluded).
With --retrieval retrieval/NAME (`myo retrieval train`), also R@1/R@3 among the set's distinct
captions, MM-Dist and FID against the real clips (myocli/retrieval/evaluator.py), the real clips' own
R@k being the ceiling.

Run from the repository root (models in ./checkpoints or $MYO_HOME):
    python benchmarks/t2m_compare.py --data datasets/tok_test.h5 --models ssm/quality-phys ssm/quality-nophys lm/quality-it [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import replace

TIMING_CAPTION = "a person does one squat"


def _generator(spec: str, ssm_steps: int | None = None, refine_steps: int | None = None, temperature: float | None = None):
    """(label, fps, generate(caption, seconds, seed) -> positions) for an lm/ or ssm/ checkpoint."""
    from myocli import registry

    if registry.resolve(spec).kind == "ssm":
        from myocli.ssm.engine import SSMEngine

        engine = SSMEngine.load(spec)
        options = [f"{ssm_steps} steps"] * bool(ssm_steps) + [f"refine {refine_steps}"] * (refine_steps is not None)
        label = engine.ref.label + (f" ({', '.join(options)})" if options else "")
        return label, engine.fps, lambda caption, seconds, seed: engine.text_to_motion(caption, seconds, seed, ssm_steps, refine_steps=refine_steps)
    from myocli.lm.engine import LMEngine, Sampling
    from myocli.lm.sampling import DEFAULT_TEMPERATURE

    engine = LMEngine.load(spec)
    from myocli.motion.refine import DEFAULT_STEPS

    steps = DEFAULT_STEPS if refine_steps is None else refine_steps
    options = [f"refine {refine_steps}"] * (refine_steps is not None) + [f"temperature {temperature:g}"] * (temperature is not None)
    label = engine.lm.ref.label + (f" ({', '.join(options)})" if options else "")
    sampling = Sampling(temperature=DEFAULT_TEMPERATURE if temperature is None else temperature, refine_steps=steps)
    return label, engine.fps, lambda caption, seconds, seed: engine.text_to_motion(caption, seconds, replace(sampling, seed=seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--timing", type=int, default=10, help="4-second samples timed per model")
    parser.add_argument("--ssm-steps", type=int, default=None, help="flow steps of the SSM models (default: each model's own)")
    parser.add_argument("--refine-steps", type=int, default=None, help="physics refinement steps of every model (default: each model's own, 10 for LMs)")
    parser.add_argument("--lm-temperature", type=float, default=None, help="sampling temperature of the language models (default: myo's, 0.4)")
    parser.add_argument("--retrieval", default=None, help="retrieval evaluator (retrieval/NAME) for R-precision, MM-Dist and FID")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import numpy as np
    import torch

    from myocli.data.h5 import read_dataset
    from myocli.lm.evaluate import plausibility

    dataset = read_dataset(args.data)
    clips = [s for s in dataset.sequences if len(s) >= dataset.fps and s.captions]
    captions = [c.captions[0] for c in clips]
    real = [c.motion.astype(np.float64) for c in clips]
    evaluator = None
    if args.retrieval:
        from myocli.retrieval.evaluator import Evaluator

        evaluator = Evaluator.load(args.retrieval)
        real_embedded = evaluator.embed_motions(real, dataset.fps)
    report = {
        "data": args.data,
        "clips": len(clips),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "real": plausibility(real, dataset.fps),
        "retrieval": evaluator.ref.label if evaluator else None,
        "models": {},
    }
    if evaluator:
        report["real"] |= evaluator.scores(real, captions, dataset.fps, embedded=real_embedded)
    for spec in args.models:
        label, fps, generate = _generator(spec, args.ssm_steps, args.refine_steps, args.lm_temperature)
        # Lengths in whole 0.2 s steps, as both model kinds make them.
        motions = [generate(c.captions[0], round(len(c) / fps / 0.2) * 0.2, k).astype(np.float64) for k, c in enumerate(clips)]
        generate(TIMING_CAPTION, 4.0, 0)  # warm-up
        times = []
        for seed in range(args.timing):
            start = time.perf_counter()
            generate(TIMING_CAPTION, 4.0, seed)
            times.append(time.perf_counter() - start)
        report["models"][label] = plausibility(motions, fps) | {"seconds_per_4s_motion": round(statistics.median(times), 4)}
        if evaluator:
            report["models"][label] |= evaluator.scores(motions, captions, fps, real=real_embedded)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['clips']} clips of {args.data}; {report['machine']}")
    retrieval = "".join(f" {h:>7s}" for h in ("R@1", "R@3", "MM-Dist", "FID")) if evaluator else ""
    print(f"{'':40s} {'skating':>8s} {'penetr. mm':>10s} {'floating mm':>11s} {'bone mm':>8s} {'s / 4 s':>8s}{retrieval}")
    rows = [("real clips", report["real"] | {"seconds_per_4s_motion": float("nan"), "fid": 0.0})] + list(report["models"].items())
    for name, r in rows:
        scores = "".join(f" {r[k]:7.3f}" for k in ("r_at_1", "r_at_3", "mm_dist", "fid")) if evaluator else ""
        print(f"{name:40s} {r['foot_skating_ratio']:8.3f} {r['penetration_mm']:10.1f} {r['floating_mm']:11.1f} "
              f"{r['bone_length_error_mm']:8.1f} {r['seconds_per_4s_motion']:8.3f}{scores}")  # fmt: skip


if __name__ == "__main__":
    main()
