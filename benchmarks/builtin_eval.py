"""The built-in generator's judged figures, on an HDM05 actor it never saw (the validation build).

    MYO_HOME=build/holdout-mm/checkpoints python benchmarks/builtin_eval.py --data build/holdout-mm/heldout.h5 \\
        --model ssm/myo-base-build --retrieval retrieval/myo-base-build --samples 5 --json build/holdout-mm/eval.json

Motions are sampled with the settings the package gives the shipped generator (builtin/build.SAMPLING),
unless --model-sampling or the single flags say otherwise.

1. captions: one motion per held-out clip from its caption, at its length (seed = clip index):
   R@1/R@3 among the actor's distinct captions, FID, and the physical measures (foot skating...);
2. paraphrases: benchmarks/data/paraphrases.csv's sentences for the HDM05 actions (never trained
   on), --samples seeds each, at the class's median held-out length: R@1, the share of motions
   whose nearest caption (of the same candidates as 1.) is their action's;
3. geometric checks (benchmarks/motion_checks.py) of 4-s motions for walk, jog, run, jump,
   cartwheel, backflip, crawl, get up, kick, punch and turns, from the paraphrases and from a
   training caption of each, --samples seeds each. --motions saves them as .npy for contact sheets.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from motion_checks import CHECKS, check  # noqa: E402

PARAPHRASES = HERE / "data" / "paraphrases.csv"
# The motion keys of the paraphrases and captions (myocli/builtin/captions.csv) that each check judges.
CHECKED = {
    "walk": "deepmimic:humanoid3d_walk", "jog": "deepmimic:humanoid3d_jog", "run": "deepmimic:humanoid3d_run",
    "jump": "deepmimic:humanoid3d_jump", "cartwheel": "deepmimic:humanoid3d_cartwheel", "backflip": "deepmimic:humanoid3d_backflip",
    "crawl": "deepmimic:humanoid3d_crawl", "get up": "deepmimic:humanoid3d_getup_faceup", "kick": "deepmimic:humanoid3d_kick",
    "punch": "deepmimic:humanoid3d_punch", "turn": "turn",
}  # fmt: skip
# The training caption of a turn: the turns captions.csv cuts out of DeepMimic's long walks.
TURN_CAPTION = "a person walks and turns around to the left"


def rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the held-out actor's clips (myo28 .h5 with the training captions)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--retrieval", required=True)
    parser.add_argument("--samples", type=int, default=3, help="seeds per paraphrase and per checked prompt")
    # By default the sampling settings package.py writes into the shipped generator (build.SAMPLING).
    parser.add_argument("--guidance", type=float, default=None, help="classifier-free guidance")
    parser.add_argument("--steps", type=int, default=None, help="flow steps")
    parser.add_argument("--refine-steps", type=int, default=None, help="physics refinement steps")
    parser.add_argument("--text-snap", type=float, default=None, help="pull prompts towards their nearest known caption")
    parser.add_argument("--model-sampling", action="store_true", help="sample with the model's own settings instead of the shipped ones")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--motions", type=Path, help="save the checked motions here as .npy")
    args = parser.parse_args()

    from myocli.builtin.build import SAMPLING, read_captions
    from myocli.data.h5 import read_dataset
    from myocli.lm.evaluate import plausibility
    from myocli.retrieval.evaluator import Evaluator
    from myocli.ssm.engine import SSMEngine

    engine, evaluator = SSMEngine.load(args.model), Evaluator.load(args.retrieval)
    given = {"guidance": args.guidance, "sample_steps": args.steps, "refine_steps": args.refine_steps, "text_snap": args.text_snap}
    settings = ({} if args.model_sampling else SAMPLING) | {k: v for k, v in given.items() if v is not None}
    for field, value in settings.items():
        setattr(engine.config, field, value)
    dataset = read_dataset(args.data)
    fps = engine.fps
    clips = [s for s in dataset.sequences if len(s) >= 4 and s.captions]
    captions = [c.captions[0] for c in clips]
    real = [c.motion.astype(np.float64) for c in clips]
    real_embedded = evaluator.embed_motions(real, fps)
    seconds = lambda frames: max(0.2, round(frames / fps / 0.2) * 0.2)  # noqa: E731 - whole patches

    report = {"model": engine.ref.label, "retrieval": evaluator.ref.label, "data": args.data, "clips": len(clips),
              "guidance": engine.config.guidance, "steps": engine.config.sample_steps,
              "refine_steps": engine.config.refine_steps, "text_snap": engine.config.text_snap, "samples": args.samples}  # fmt: skip
    real_scores = evaluator.scores(real, captions, fps, embedded=real_embedded)
    report["real"] = plausibility(real, fps) | {k: v for k, v in real_scores.items() if k != "r_at_1_per_caption"}
    generated = [engine.text_to_motion(c.captions[0], seconds(len(c)), k) for k, c in enumerate(clips)]
    scores = evaluator.scores(generated, captions, fps, real=real_embedded)
    report["captions"] = plausibility(generated, fps) | scores

    # Paraphrases of the held-out actions, ranked among the same candidate captions.
    training = read_captions()
    candidates = list(dict.fromkeys(captions))
    class_of = {training[key][0]: key for key in training if key.startswith("hdm05:")}
    lengths = defaultdict(list)
    for clip in clips:
        lengths[class_of[clip.captions[0]]].append(len(clip))
    text = evaluator.embed_captions(candidates)
    hits, per_class = [], defaultdict(list)
    for row in rows(PARAPHRASES):
        if row["motion"] not in lengths:
            continue
        motions = [engine.text_to_motion(row["text"], seconds(statistics.median(lengths[row["motion"]])), seed) for seed in range(args.samples)]
        nearest = np.argmin(np.linalg.norm(evaluator.embed_motions(motions, fps)[:, None] - text[None], axis=-1), axis=1)
        own = candidates.index(training[row["motion"]][0])
        hits += [int(n == own) for n in nearest]
        per_class[row["motion"]] += [int(n == own) for n in nearest]
    report["paraphrases"] = {"r_at_1": float(np.mean(hits)), "motions": len(hits), "per_action": {k: float(np.mean(v)) for k, v in per_class.items()}}

    # Geometric checks, 4-s motions.
    checks = {}
    for name, key in CHECKED.items():
        prompts = {"paraphrase": [r["text"] for r in rows(PARAPHRASES) if r["motion"] == key],
                   "caption": [TURN_CAPTION if key == "turn" else training[key][0]]}  # fmt: skip
        checks[name] = {"asks": CHECKS[name][0]}
        for kind, texts in prompts.items():
            passed = []
            for t, prompt in enumerate(texts):
                for seed in range(args.samples):
                    motion = engine.text_to_motion(prompt, 4.0, seed)
                    passed.append(check(name, motion, fps))
                    if args.motions:
                        args.motions.mkdir(parents=True, exist_ok=True)
                        np.save(args.motions / f"{name.replace(' ', '_')}_{kind}{t}_{seed}.npy", motion.astype(np.float32))
            checks[name][kind] = float(np.mean(passed))
    report["checks"] = checks
    for kind in ("paraphrase", "caption"):
        report[f"checks_{kind}_mean"] = float(np.mean([c[kind] for c in checks.values()]))
        report[f"checks_{kind}_at_least_70"] = sum(c[kind] >= 0.7 for c in checks.values())

    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    c, p = report["captions"], report["paraphrases"]
    print(f"{report['model']} on {report['clips']} held-out clips ({args.data}), judged by {report['retrieval']}")
    print(f"captions:    R@1 {c['r_at_1']:.2f}  R@3 {c['r_at_3']:.2f}  FID {c['fid']:.2f}  skating {c['foot_skating_ratio']:.3f}  "
          f"(real clips: R@1 {report['real']['r_at_1']:.2f}, skating {report['real']['foot_skating_ratio']:.3f})")  # fmt: skip
    print(f"paraphrases: R@1 {p['r_at_1']:.2f} over {p['motions']} motions")
    for name, result in checks.items():
        print(f"check {name:10s} paraphrases {result['paraphrase']:.2f}  caption {result['caption']:.2f}   ({result['asks']})")
    print(f"checks passed by >= 70% of samples: {report['checks_paraphrase_at_least_70']}/{len(checks)} (paraphrases), "
          f"{report['checks_caption_at_least_70']}/{len(checks)} (captions)")  # fmt: skip


if __name__ == "__main__":
    main()
