"""`myo lm eval`: measure a language model on a held-out myo28 dataset, task by task.

    t2m        from each clip's caption, with its length stated in the prompt (not imposed):
               share of valid motions, length error, and the plausibility measures of the
               generated motion (foot skating ratio, penetration, floating, bone-length error)
               next to the same measures of the real clips; with a retrieval evaluator
               (`myo retrieval train`), R@1/2/3, MM-Dist and FID too (myocli/retrieval/evaluator.py).
    m2t        greedy captions against each clip's captions: BLEU-4 and ROUGE-L.
    predict    the first 20% of the codes as context, the rest generated at its true length:
               ADE and FDE in metres over the generated frames, in the clip's own frame.
    inbetween  the first and last 25% kept, the middle generated at its true length: ADE, FDE.

Every clip is measured through its tokens, so the figures include the tokenizer's own error;
`myo tokenizer eval` gives that alone.
"""

from __future__ import annotations

import numpy as np

from myocli.errors import MyoError
from myocli.lm import prompts
from myocli.lm.engine import LMEngine, Sampling
from myocli.motion import metrics
from myocli.motion.text_metrics import bleu4, rouge_l

PREDICT_CONTEXT_SHARE = 0.2  # MotionGPT's motion prediction protocol
INBETWEEN_KEPT_SHARE = 0.25


def plausibility(motions: list[np.ndarray], fps: float) -> dict:
    return {
        "foot_skating_ratio": float(np.mean([metrics.foot_skating_ratio(m, fps) for m in motions])),
        "penetration_mm": float(np.mean([metrics.penetration_mm(m) for m in motions])),
        "floating_mm": float(np.mean([metrics.floating_mm(m) for m in motions])),
        "bone_length_error_mm": float(np.mean([metrics.bone_length_error_mm(m) for m in motions])),
    }


def evaluate(engine: LMEngine, dataset, tasks: tuple[str, ...], sampling: Sampling, limit: int | None = None, on_item=None,
             where: str = "the dataset", evaluator=None) -> dict:
    """Figures per task over the clips long enough for every task (3 codes or more); `evaluator`
    (a retrieval.Evaluator) adds retrieval scores of the real and the generated t2m motions."""
    down, fps = engine.config.downsample, engine.fps
    if {"t2m", "m2t"} & set(tasks):  # both compare with the clips' captions
        dataset.require_captions(where, "evaluating text-to-motion and motion-to-text")
    clips = []
    for sequence in dataset.sequences:
        if len(sequence.motion) >= 3 * down:
            codes = engine.encode(sequence.motion.astype(np.float64), sequence.name)[: engine.config.max_motion_tokens]
            clips.append((sequence, codes))
    if not clips:
        raise MyoError(f"{where}: no clip has {3 * down} frames or more ({3 * down / fps:g} s); nothing to evaluate")
    clips = clips[:limit] if limit else clips
    report: dict = {"clips": len(clips), "skipped_too_short": len(dataset.sequences) - len(clips) if not limit else None}
    real = [s.motion[: len(c) * down].astype(np.float64) for s, c in clips]
    report["real"] = plausibility(real, fps)
    if evaluator is not None:
        from myocli.retrieval.evaluator import check_rankable

        real_captions = [s.captions[0] for s, _ in clips]
        check_rankable(real_captions, where, "leave --retrieval out")
        real_embedded = evaluator.embed_motions(real, fps)
        report["real"] |= evaluator.scores(real, real_captions, fps, embedded=real_embedded)
    step = on_item or (lambda: None)

    if "t2m" in tasks:
        motions, captions, length_errors, valid = [], [], [], 0
        for k, (sequence, codes) in enumerate(clips):
            answer = engine.text_to_codes(sequence.captions[0], len(codes), sampling, k, enforce=False)
            step()
            if not len(answer):
                continue
            motion = engine.motion(answer, refine_steps=sampling.refine_steps)
            if np.isfinite(motion).all():
                valid += 1
                motions.append(motion)
                captions.append(sequence.captions[0])
                length_errors.append(abs(len(answer) - len(codes)) * engine.config.seconds_per_token)
        report["t2m"] = {"valid_ratio": valid / max(len(clips), 1), "length_error_s": float(np.mean(length_errors)) if length_errors else None}
        report["t2m"] |= plausibility(motions, fps) if motions else {}
        if evaluator is not None and len(motions) >= 2:
            report["t2m"] |= evaluator.scores(motions, captions, fps, real=real_embedded)

    if "m2t" in tasks:
        greedy = Sampling(0.0, 0, 1.0, sampling.seed)
        hypotheses = []
        for k, (_, codes) in enumerate(clips):
            hypotheses.append(engine.codes_to_text(codes, greedy, k))
            step()
        references = [s.captions for s, _ in clips]
        report["m2t"] = {"bleu4": bleu4(hypotheses, references), "rouge_l": rouge_l(hypotheses, references),
                         "examples": [{"reference": r[0], "generated": h} for r, h in list(zip(references, hypotheses, strict=True))[:5]]}  # fmt: skip

    for task in ("predict", "inbetween"):
        if task not in tasks:
            continue
        ade, fde = [], []
        for k, ((_, codes), truth) in enumerate(zip(clips, real, strict=True)):
            if task == "predict":
                head = prompts.context_split(len(codes), PREDICT_CONTEXT_SHARE)
                tail = 0
                middle = engine.continue_codes(codes[:head], len(codes) - head, sampling, k)
            else:
                head, tail = prompts.inbetween_split(len(codes), INBETWEEN_KEPT_SHARE, INBETWEEN_KEPT_SHARE)
                middle = engine.fill_codes(codes[:head], len(codes) - head - tail, codes[len(codes) - tail :], sampling, k)
            step()
            joined = engine.motion(np.r_[codes[:head], middle, codes[len(codes) - tail :]], like=truth)
            # Both on the floor and in the clip's own frame; compare the generated frames only.
            generated = slice(head * down, (len(codes) - tail) * down)
            a, f = metrics.displacement_errors(joined[generated], truth[generated])
            ade.append(a)
            fde.append(f)
        report[task] = {"ade_m": float(np.mean(ade)), "fde_m": float(np.mean(fde))}
    return report

