"""The SSM generator in use: load a checkpoint and turn captions into motions.

Motions come out as the language model's do (myocli/lm/engine.py): (T, 28, 3) float32
metres at the model's fps, starting at the origin facing +Z, on the floor. Lengths come in
whole patches (4 frames, 0.2 s at 20 fps; in latent mode one latent, which the
tokenizer's decoder turns into its frames); without --seconds the length is drawn from the
model's length head for the caption. After sampling, `refine_steps` gradient steps of
physics refinement (myocli/motion/refine.py) stop feet sliding while on the floor and lift
joints out of it. Sample I of a command uses seed + I, drawn in a batch of its own, so it
does not depend on how many samples are drawn (and refinement never sees padding).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from myocli import registry
from myocli.errors import MyoError
from myocli.motion.refine import DEFAULT_STEPS as DEFAULT_REFINE_STEPS
from myocli.ssm.model import PARALLEL, SSMConfig


class SSMEngine:
    def __init__(self, ref, config: SSMConfig, model, manifest: dict, pretrained=None, latent=None):
        if config.refine_steps is None:  # a config without the setting: refinement's own default
            config = dataclasses.replace(config, refine_steps=DEFAULT_REFINE_STEPS)
        self.ref, self.config, self.model, self.manifest, self.pretrained = ref, config, model, manifest, pretrained
        self.latent = latent  # the tokenizer whose latent the flow runs over (latent mode), else None

    @classmethod
    def load(cls, spec: str) -> SSMEngine:
        from myocli.ssm import text as text_encoders
        from myocli.ssm.model import MotionFlow

        loaded = registry.from_pretrained(spec, "ssm", SSMConfig, lambda config, ref: MotionFlow(config))
        ref, config = loaded.ref, loaded.config
        pretrained = text_encoders.load_inside(ref, config)
        latent = None
        if config.latent_tokenizer:
            from myocli.ssm.latent import LatentSpace

            latent = LatentSpace.of(config, ref.label)
        return cls(ref, config, loaded.model, loaded.manifest, pretrained, latent)

    def to(self, device) -> SSMEngine:
        """Run on `device` ("cpu", "cuda"): the generator and, in latent mode, the tokenizer's decoder."""
        self.model.to(device)
        if self.latent is not None:
            self.latent.model.to(device)
        return self

    @property
    def fps(self) -> float:
        return self.config.fps

    def patches_for_seconds(self, seconds: float, option: str = "--seconds") -> int:
        c = self.config
        patches = max(1, round(seconds * c.fps / c.patch_frames))
        if seconds <= 0 or patches > c.max_patches:
            raise MyoError(f"{option} {seconds:g}: give a length above 0 and up to {c.max_frames / c.fps:g} s (this model's longest motion)")
        return patches

    def text_condition(self, captions: list[str]):
        from myocli.ssm.text import text_input
        from myocli.text.known import snap

        text = text_input(self.config, self.pretrained, captions)
        if self.config.text_snap > 0 and self.known_vectors is not None:
            text = snap(text, self.known_vectors, self.config.text_snap)
        return self.model.text_condition(text.to(self.model.mean.device))

    @functools.cached_property
    def known_vectors(self):
        """Unit vectors of the training captions (text/known.py), embedded once; None for a model that cannot
        compare: a byte-level encoder has no meaning of similarity outside its training captions, and the
        warning's threshold was set for the static table."""
        from myocli.text.static import StaticText

        known = self.manifest.get("known_captions", [])
        return self.pretrained.embed(known) if isinstance(self.pretrained, StaticText) and known else None

    def nearest_known(self, prompt: str) -> list[tuple[str, float]]:
        """The training captions nearest to the prompt, with their similarities; empty when the model cannot say."""
        from myocli.text.known import nearest_known

        if self.known_vectors is None:
            return []
        return nearest_known(self.pretrained, prompt, self.manifest["known_captions"], self.known_vectors)

    def to_features(self, sample):
        """The flow's normalised sample (batch, rows, row_dim) -> unnormalised features (batch, T, D), differentiable."""
        x = sample * self.model.std + self.model.mean
        return x if self.latent is None else self.latent.decode(x)

    def generate_features(self, caption: str, seconds: float | None, seed: int, steps: int | None = None,
                          guidance: float | None = None, scan: str = PARALLEL, refine_steps: int | None = None) -> np.ndarray:  # fmt: skip
        """One feature sequence (T, D) for a caption, refined (default: the model's refine_steps)."""
        import torch

        from myocli.motion.refine import refine

        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            cond = self.text_condition([caption])
            if seconds is None:
                probabilities = torch.softmax(self.model.length_logits(cond)[0], dim=-1).cpu()  # the generator is a CPU one
                patches = int(torch.multinomial(probabilities, 1, generator=generator)) + 1
            else:
                patches = self.patches_for_seconds(seconds)
            x = self.model.sample(cond, torch.tensor([patches], device=cond.device), generator, steps, guidance, scan)
        x = refine(x, self.to_features, self.fps, self.config.refine_steps if refine_steps is None else refine_steps)
        with torch.no_grad():
            return self.to_features(x)[0].cpu().numpy().astype(np.float64)

    def text_to_motion(self, caption: str, seconds: float | None, seed: int, steps: int | None = None,
                       guidance: float | None = None, scan: str = PARALLEL, refine_steps: int | None = None) -> np.ndarray:  # fmt: skip
        from myocli.motion.features import generated_positions

        return generated_positions(self.generate_features(caption, seconds, seed, steps, guidance, scan, refine_steps))
