"""The four tasks of the motion language model and how each becomes (input ids, answer ids).

    t2m        caption          -> motion        ("Generate a motion: a person squats")
    m2t        motion           -> caption
    predict    first part       -> the rest of the motion
    inbetween  start, masked middle, end -> the middle

Instructions come from `configs/lm/instructions.json` (many phrasings per task, written for
myo). Pretraining uses the first, plainest phrasing of each task; instruction tuning draws
among all of them; generation uses the first. A motion inside an instruction is written
as `<motion_start> codes <motion_end>`; in-betweening puts one `<motion_mask>` per missing
code, so the answer's length is known. Text-to-motion and prediction prompts may carry the
wanted duration (" (4.0 seconds)"), which is how the model learns length control.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

import numpy as np

from myocli.errors import MyoError
from myocli.lm.model import MotionVocab

TASKS = ("t2m", "m2t", "predict", "inbetween")
PRETRAIN_TASKS = ("t2m", "m2t", "predict")
MOTION_ANSWER = {"t2m": True, "m2t": False, "predict": True, "inbetween": True}
# Share of the codes given as context when training prediction (MotionGPT conditions on the
# first 20%) and in-betweening (a start and an end each of this share).
PREDICT_CONTEXT = (0.2, 0.5)
INBETWEEN_CONTEXT = (0.15, 0.35)
DURATION_HINT_PROBABILITY = 0.5  # of t2m and predict examples whose prompt states the length
MINIMUM_CODES = {"t2m": 1, "m2t": 1, "predict": 2, "inbetween": 3}


@cache
def instructions() -> dict[str, list[str]]:
    from importlib.resources import files

    text = files("myocli").joinpath("configs/lm/instructions.json").read_text()
    return json.loads(text)


def duration_hint(seconds: float) -> str:
    return f" ({seconds:.1f} seconds)"


@dataclass
class Prompter:
    """Turns task inputs into token ids with a text tokenizer and the motion vocabulary."""

    text_tokenizer: object
    vocab: MotionVocab

    def text_ids(self, text: str) -> list[int]:
        return self.text_tokenizer(text, add_special_tokens=False)["input_ids"]

    def instruction(self, template: str, caption: str | None = None, motion: list[int] | None = None, seconds: float | None = None) -> list[int]:
        """A filled template ending in </s>. `motion`: ids already wrapped in start/end."""
        text = template.replace("{caption}", caption or "")
        before, marker, after = text.partition("{motion}")
        ids = self.text_ids(before)
        if marker:
            ids += (motion or []) + self.text_ids(after)
        if seconds is not None:
            ids += self.text_ids(duration_hint(seconds))
        return ids + [self.vocab.eos]

    def caption_answer(self, caption: str) -> list[int]:
        return self.text_ids(caption) + [self.vocab.eos]

    def motion_answer(self, codes) -> list[int]:
        return self.vocab.motion_ids(codes) + [self.vocab.eos]

    def masked_motion(self, start_codes, missing: int, end_codes) -> list[int]:
        ids = self.vocab.motion_ids(start_codes)[:-1] + [self.vocab.mask] * missing
        return ids + [self.vocab.offset + int(c) for c in end_codes] + [self.vocab.end]

    # The inputs of each task, shared by training, evaluation and generation.
    def t2m(self, template: str, caption: str, seconds: float | None) -> list[int]:
        if not caption.strip():
            raise MyoError("the text prompt is empty; describe the motion, e.g. \"a person walks forward\"")
        return self.instruction(template, caption=caption.strip(), seconds=seconds)

    def m2t(self, template: str, codes) -> list[int]:
        return self.instruction(template, motion=self.vocab.motion_ids(codes))

    def predict(self, template: str, context_codes, seconds: float | None) -> list[int]:
        return self.instruction(template, motion=self.vocab.motion_ids(context_codes), seconds=seconds)

    def inbetween(self, template: str, start_codes, missing: int, end_codes) -> list[int]:
        return self.instruction(template, motion=self.masked_motion(start_codes, missing, end_codes))


def context_split(length: int, share: float) -> int:
    """Codes of context for a share of a sequence: at least 1, leaving at least 1 to generate."""
    return int(np.clip(round(share * length), 1, length - 1))


def inbetween_split(length: int, head_share: float, tail_share: float) -> tuple[int, int]:
    """Codes kept at the start and at the end: at least 1 each, leaving at least 1 in the middle."""
    head = int(np.clip(round(head_share * length), 1, length - 2))
    return head, int(np.clip(round(tail_share * length), 1, length - head - 1))


def training_example(
    prompter: Prompter, task: str, codes: np.ndarray, caption: str, template: str, rng: np.random.Generator, seconds_per_code: float
) -> tuple[list[int], list[int]]:
    """One (input, answer) pair of a task from one code sequence; `rng` draws splits and hints."""
    hint = rng.random() < DURATION_HINT_PROBABILITY
    if task == "t2m":
        return prompter.t2m(template, caption, len(codes) * seconds_per_code if hint else None), prompter.motion_answer(codes)
    if task == "m2t":
        return prompter.m2t(template, codes), prompter.caption_answer(caption)
    if task == "predict":
        split = context_split(len(codes), rng.uniform(*PREDICT_CONTEXT))
        seconds = (len(codes) - split) * seconds_per_code if hint else None
        return prompter.predict(template, codes[:split], seconds), prompter.motion_answer(codes[split:])
    if task == "inbetween":
        head, tail = inbetween_split(len(codes), rng.uniform(*INBETWEEN_CONTEXT), rng.uniform(*INBETWEEN_CONTEXT))
        middle = codes[head : len(codes) - tail]
        return prompter.inbetween(template, codes[:head], len(middle), codes[len(codes) - tail :]), prompter.motion_answer(middle)
    raise ValueError(f"unknown task {task!r}")
