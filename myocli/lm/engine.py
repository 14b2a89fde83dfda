"""The motion language model in use: load a checkpoint with its motion tokenizer, answer the four tasks.

`load_lm` verifies the checkpoint, rebuilds the T5 and its text tokenizer (from the static
text encoder the checkpoint carries, for a model trained with one), and finds the
motion tokenizer it was trained on (by registry label, checked by the sha256 of its
weights: the codes mean nothing with another tokenizer). `LMEngine` turns motions into
codes and back and runs the tasks; the command line (`myo generate`) and `myo lm eval`
both go through it.

Motions come out as (T, 28, 3) float32 metres, on the floor (lowest heel or ball at y = 0,
as converted data is). A text-to-motion answer starts at the origin facing +Z; a
continuation or an in-between starts where the given motion starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from myocli import registry
from myocli.errors import MyoError
from myocli.lm import prompts
from myocli.lm.model import LMConfig, MotionVocab
from myocli.lm.sampling import Sampling

# A continuation is conditioned on at most this share of the answer budget (training used 20-50%).
MAX_CONTEXT_SHARE = 0.5


@dataclass
class LoadedLM:
    ref: registry.CheckpointRef
    config: LMConfig
    model: object  # transformers T5ForConditionalGeneration, in eval mode
    text_tokenizer: object
    vocab: MotionVocab
    manifest: dict
    text_encoder: object = None  # the static text encoder it reads text through (text_encoder/), if any

    @property
    def prompter(self) -> prompts.Prompter:
        return prompts.Prompter(self.text_tokenizer, self.vocab)


def load_lm(spec: str) -> LoadedLM:
    from myocli.lm import model as lm
    from myocli.ssm import text as text_encoders

    # The frozen text encoder the checkpoint carries (None unless trained with --text-encoder): loaded
    # once by `build`, the model and its text tokenizer both read text through it.
    inside = {}

    def build(config, ref):
        inside["text_encoder"] = text_encoders.load_inside(ref, config)
        return lm.build_model(config, inside["text_encoder"])

    loaded = registry.from_pretrained(spec, "lm", LMConfig, build)
    text_tokenizer, vocab = lm.load_text_tokenizer(loaded.config, loaded.ref.path, inside["text_encoder"])
    return LoadedLM(loaded.ref, loaded.config, loaded.model, text_tokenizer, vocab, loaded.manifest, inside["text_encoder"])


def parent_tokenizer(config: LMConfig, label: str):
    """The motion tokenizer an LM was trained on: (ref, VQVAE), or a clear error when it is gone or differs."""
    from myocli.tokenizer import codec as tok

    ref, model = tok.load_parent(config.tokenizer, config.tokenizer_sha256, label, "the codes of")
    if model.config.codebook_size != config.codebook_size or model.config.downsample != config.downsample:
        raise MyoError(f"{label} expects {config.codebook_size} codes at {config.downsample}x downsampling; {ref.label} has "
                       f"{model.config.codebook_size} at {model.config.downsample}x")  # fmt: skip
    return ref, model


@dataclass
class Continuation:
    motion: np.ndarray  # (T, 28, 3): the given part (as the tokenizer reproduces it) and the new part
    new_frames: slice  # where the generated frames are


class LMEngine:
    def __init__(self, lm: LoadedLM, tokenizer_model):
        self.lm = lm
        self.tokenizer = tokenizer_model
        self.config = lm.config
        self.prompter = lm.prompter

    @classmethod
    def load(cls, spec: str) -> LMEngine:
        lm = load_lm(spec)
        return cls(lm, parent_tokenizer(lm.config, lm.ref.label)[1])

    def to(self, device) -> LMEngine:
        """Run on `device` ("cpu", "cuda"): the language model and the tokenizer that turns its codes into motion."""
        self.lm.model.to(device)
        self.tokenizer.to(device)
        return self

    # Motions <-> codes.
    @property
    def fps(self) -> float:
        return self.config.fps

    def codes_for_seconds(self, seconds: float, option: str = "--seconds") -> int:
        codes = max(1, round(seconds / self.config.seconds_per_token))
        if seconds <= 0 or codes > self.config.max_motion_tokens:
            longest = self.config.max_motion_tokens * self.config.seconds_per_token
            raise MyoError(f"{option} {seconds:g}: give a length above 0 and up to {longest:g} s (this model's longest answer)")
        return codes

    def encode(self, motion: np.ndarray, where: str) -> np.ndarray:
        """A motion (T, 28, 3) at the model's fps -> first-codebook codes (L,)."""
        from myocli.tokenizer import codec as tok

        if not tok.can_encode(len(motion), self.config.downsample):
            raise MyoError(f"{where}: {len(motion)} frames; the tokenizer needs at least {self.config.downsample}")
        return tok.encode(self.tokenizer, tok.motion_features(motion, self.fps))[:, 0]

    def motion(self, codes: np.ndarray, like: np.ndarray | None = None, refine_steps: int = 0) -> np.ndarray:
        """Codes -> positions on the floor, starting at the origin facing +Z or where `like` starts,
        after `refine_steps` of physics refinement of their latent."""
        from myocli.motion import features as feat
        from myocli.tokenizer import codec as tok

        start = feat.start_pose(like) if like is not None else (0.0, (0.0, 0.0))
        features = tok.decode(self.tokenizer, np.asarray(codes, dtype=np.int64)[:, None], refine_steps)
        return feat.generated_positions(features, start)

    # The tasks.
    def _answer(self, input_ids: list[int], rule, sampling: Sampling, sample: int) -> list[int]:
        from myocli.lm.decoding import decode

        if len(input_ids) > self.config.max_input_tokens:
            raise MyoError(f"the prompt is {len(input_ids)} tokens; this model reads at most {self.config.max_input_tokens}")
        return decode(self.lm.model, input_ids, rule, sampling.temperature, sampling.top_k, sampling.top_p, sampling.generator(sample))

    def _motion_rule(self, codes: int | None, budget: int):
        from myocli.lm.decoding import MotionRule

        return MotionRule(self.lm.vocab, codes or 1, codes or budget)

    def text_to_codes(self, caption: str, codes: int | None, sampling: Sampling, sample: int = 0, enforce: bool = True) -> np.ndarray:
        """`codes`: the wanted length, stated in the prompt and (with `enforce`) imposed on the answer;
        None lets the model choose. Evaluation states it without imposing it, to measure length control."""
        seconds = codes * self.config.seconds_per_token if codes else None
        ids = self.prompter.t2m(prompts.instructions()["t2m"][0], caption, seconds)
        rule = self._motion_rule(codes if enforce else None, self.config.max_motion_tokens)
        return self.lm.vocab.codes(self._answer(ids, rule, sampling, sample))

    def codes_to_text(self, codes: np.ndarray, sampling: Sampling, sample: int = 0) -> str:
        from myocli.lm.decoding import TextRule

        ids = self.prompter.m2t(prompts.instructions()["m2t"][0], codes[: self.config.max_motion_tokens])
        answer = self._answer(ids, TextRule(self.lm.vocab, self.config.max_text_tokens), sampling, sample)
        text = self.lm.text_tokenizer.decode(answer, skip_special_tokens=True)
        return " ".join(text.split())  # one line: a byte-level model may also write newlines

    def continue_codes(self, context: np.ndarray, codes: int | None, sampling: Sampling, sample: int = 0) -> np.ndarray:
        budget = self.config.max_motion_tokens - len(context)
        if codes and codes > budget:
            raise MyoError(f"--seconds: this model continues a {len(context)}-code context by at most {budget} codes")
        seconds = codes * self.config.seconds_per_token if codes else None
        ids = self.prompter.predict(prompts.instructions()["predict"][0], context, seconds)
        return self.lm.vocab.codes(self._answer(ids, self._motion_rule(codes, budget), sampling, sample))

    def fill_codes(self, head: np.ndarray, missing: int, tail: np.ndarray, sampling: Sampling, sample: int = 0) -> np.ndarray:
        ids = self.prompter.inbetween(prompts.instructions()["inbetween"][0], head, missing, tail)
        return self.lm.vocab.codes(self._answer(ids, self._motion_rule(missing, missing), sampling, sample))

    # Motion-level tasks, as `myo generate` offers them.
    def text_to_motion(self, caption: str, seconds: float | None, sampling: Sampling, sample: int = 0) -> np.ndarray:
        codes = self.codes_for_seconds(seconds) if seconds is not None else None
        return self.motion(self.text_to_codes(caption, codes, sampling, sample), refine_steps=sampling.refine_steps)

    def motion_to_text(self, motion: np.ndarray, where: str, sampling: Sampling, sample: int = 0) -> str:
        return self.codes_to_text(self.encode(motion, where), sampling, sample)

    def predict(self, motion: np.ndarray, where: str, seconds: float | None, sampling: Sampling, sample: int = 0) -> Continuation:
        """Continue a motion: its last codes (up to half the answer budget) are the context."""
        codes = self.encode(motion, where)
        keep = min(len(codes), int(self.config.max_motion_tokens * MAX_CONTEXT_SHARE))
        context = codes[-keep:]
        new = self.continue_codes(context, self.codes_for_seconds(seconds) if seconds is not None else None, sampling, sample)
        start = (len(codes) - keep) * self.config.downsample  # the first frame of the context
        joined = self.motion(np.r_[context, new], like=motion[start:], refine_steps=sampling.refine_steps)
        return Continuation(joined, slice(keep * self.config.downsample, None))

    def inbetween(self, motion: np.ndarray, where: str, seconds: float | None, sampling: Sampling, sample: int = 0) -> Continuation:
        """Keep the first and last quarter of a motion, generate the middle (`seconds` long, or as long as it was)."""
        codes = self.encode(motion, where)
        if len(codes) < 3:
            raise MyoError(f"{where}: {len(motion)} frames is too short to fill in; give at least {3 * self.config.downsample}")
        head, tail = prompts.inbetween_split(len(codes), 0.25, 0.25)
        missing = self.codes_for_seconds(seconds) if seconds is not None else len(codes) - head - tail
        if head + missing + tail > self.config.max_motion_tokens:
            raise MyoError(f"{where}: the motion and its middle would be {head + missing + tail} codes; this model handles "
                           f"{self.config.max_motion_tokens}; use a shorter clip or --seconds")  # fmt: skip
        middle = self.fill_codes(codes[:head], missing, codes[len(codes) - tail :], sampling, sample)
        joined = self.motion(np.r_[codes[:head], middle, codes[len(codes) - tail :]], like=motion, refine_steps=sampling.refine_steps)
        down = self.config.downsample
        return Continuation(joined, slice(head * down, (head + missing) * down))
