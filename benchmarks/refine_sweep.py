"""Sweep the physics refinement's steps and learning rate for one generator on one set of clips.

For every clip of --data (at least one second long) the model generates a motion from the
clip's first caption at the clip's own length (seed = clip index), once unrefined and once
per setting STEPSxLR. Reported per setting: foot skating ratio, penetration, floating and
bone-length error (as `t2m_compare.py`), the share of frames with a toe in contact (below
5 cm) before and after, how far refinement moved the motion (heading-aligned mean joint
distance to the unrefined motion, mm) and the time it added per clip. Choose settings on a
validation set, then report them once on the test set with t2m_compare.py.

Run from the repository root:
    python benchmarks/refine_sweep.py --data datasets/tok_val.h5 --model ssm/latent-phys --settings 10x0.1 30x0.05 [--ssm-steps 4]
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True, help="ssm/NAME or lm/NAME")
    parser.add_argument("--settings", nargs="+", default=["10x0.1"], help="STEPSxLEARNING_RATE, e.g. 10x0.1")
    parser.add_argument("--ssm-steps", type=int, default=None, help="flow steps of an SSM (default: the model's)")
    args = parser.parse_args()

    import numpy as np

    import myocli.motion.refine as refinement
    from myocli import registry
    from myocli import skeleton as sk
    from myocli.data.h5 import read_dataset
    from myocli.lm.evaluate import plausibility
    from myocli.motion.metrics import heading_aligned_mpjpe

    if registry.resolve(args.model).kind == "ssm":
        from myocli.ssm.engine import SSMEngine

        engine = SSMEngine.load(args.model)

        def generate(caption, seconds, seed, steps):
            return engine.text_to_motion(caption, seconds, seed, args.ssm_steps, refine_steps=steps)
    else:
        from myocli.lm.engine import LMEngine, Sampling

        engine = LMEngine.load(args.model)

        def generate(caption, seconds, seed, steps):
            return engine.text_to_motion(caption, seconds, Sampling(seed=seed, refine_steps=steps))

    dataset = read_dataset(args.data)
    clips = [s for s in dataset.sequences if len(s) >= dataset.fps and s.captions]

    def run(steps):
        start = time.perf_counter()
        motions = [generate(c.captions[0], round(len(c) / dataset.fps / 0.2) * 0.2, k, steps).astype(np.float64) for k, c in enumerate(clips)]
        return motions, (time.perf_counter() - start) / len(clips)

    def contact_share(motions):
        return float(np.mean(np.concatenate([(m[:, list(sk.TOE_JOINTS), 1] < sk.FOOT_CONTACT_HEIGHT_M).any(-1) for m in motions])))

    unrefined, base_time = run(0)
    print(f"{len(clips)} clips of {args.data}, {args.model}" + (f", {args.ssm_steps} flow steps" if args.ssm_steps else ""))
    print(f"{'setting':>10s} {'skating':>8s} {'penetr.':>8s} {'floating':>8s} {'bone':>6s} {'contact':>8s} {'change':>7s} {'+ms':>5s}")
    p = plausibility(unrefined, dataset.fps)
    print(f"{'none':>10s} {p['foot_skating_ratio']:8.3f} {p['penetration_mm']:8.1f} {p['floating_mm']:8.1f} "
          f"{p['bone_length_error_mm']:6.1f} {contact_share(unrefined):8.3f} {0:7.0f} {0:5.0f}")  # fmt: skip
    for setting in args.settings:
        steps, rate = setting.split("x")
        refinement.LEARNING_RATE = float(rate)
        motions, seconds = run(int(steps))
        p = plausibility(motions, dataset.fps)
        change = 1000 * np.mean([heading_aligned_mpjpe(a, b).mean() for a, b in zip(motions, unrefined, strict=True)])
        print(f"{setting:>10s} {p['foot_skating_ratio']:8.3f} {p['penetration_mm']:8.1f} {p['floating_mm']:8.1f} "
              f"{p['bone_length_error_mm']:6.1f} {contact_share(motions):8.3f} {change:7.0f} {1000 * (seconds - base_time):5.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
