"""Using a trained motion tokenizer: load it, turn motions into tokens and back, measure it.

Training lives in tokenizer/train.py; the network in tokenizer/model.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from myocli import registry
from myocli.data.h5 import MotionDataset
from myocli.errors import MyoError
from myocli.motion import features as feat
from myocli.motion import metrics


def motion_features(motion: np.ndarray, fps: float) -> np.ndarray:
    """Positions (T, 28, 3) -> the features (T, FEATURE_DIM) float32 a tokenizer reads, unnormalised."""
    return feat.to_features(motion, fps).astype(np.float32)


def sequence_features(dataset: MotionDataset) -> list[np.ndarray]:
    """Features (T, FEATURE_DIM) float32 of every sequence, unnormalised."""
    return [motion_features(s.motion, dataset.fps) for s in dataset.sequences]


def load_tokenizer(spec: str):
    """(ref, VQVAE in eval mode, manifest) from the registry, verified; refuses what does not fit."""
    from myocli.tokenizer.model import VQVAE, VQVAEConfig

    def check(ref, config):
        if config.feature_version != feat.FEATURE_VERSION or config.feature_dim != feat.FEATURE_DIM:
            raise MyoError(f"checkpoint {ref.label} uses motion features v{config.feature_version} ({config.feature_dim} dims); "
                           f"this myo uses v{feat.FEATURE_VERSION} ({feat.FEATURE_DIM}); re-train the tokenizer")  # fmt: skip

    loaded = registry.from_pretrained(spec, "tokenizer", VQVAEConfig, lambda config, ref: VQVAE(config), check)
    return loaded.ref, loaded.model, loaded.manifest


def load_parent(spec: str, sha256: str, label: str, role: str):
    """The tokenizer a model was trained on (`role`: how it used it): (ref, VQVAE), or one clear
    error when it is gone or its weights changed since (`label`: the model that needs it)."""
    try:
        ref, model, manifest = load_tokenizer(spec)
    except MyoError as exc:
        raise MyoError(
            f"{label} was trained on {role} {spec}, which cannot be loaded ({exc}); "
            f"put that checkpoint back under {registry.home()} (or point MYO_HOME at the registry that has it)"
        ) from exc
    sha = manifest["files"][registry.WEIGHTS]["sha256"]
    if sha != sha256:
        raise MyoError(f"{label} was trained on {role} {spec} with weights sha256 {sha256[:12]}…, "
                       f"but the registry's {ref.label} has {sha[:12]}…; restore the original tokenizer checkpoint")  # fmt: skip
    return ref, model


def check_dataset_fits(model, dataset: MotionDataset, where: str) -> None:
    if abs(dataset.fps - model.config.fps) > 1e-6:
        raise MyoError(
            f"{where} is at {dataset.fps:g} fps but the tokenizer was trained at {model.config.fps:g} fps; "
            f"re-convert it with `myo data convert {where} --fps {model.config.fps:g}`"
        )


def usable_length(frames: int, downsample: int) -> int:
    """Frames a tokenizer encodes: a whole number of tokens (up to downsample - 1 trailing frames are dropped)."""
    return frames // downsample * downsample


def can_encode(frames: int, downsample: int) -> bool:
    """At least one token's worth of frames."""
    return frames >= downsample


def encode(model, features: np.ndarray):
    """Unnormalised features (T, D) -> codes (T // downsample, Q) int64 (trailing frames dropped)."""
    import torch

    frames = usable_length(len(features), model.config.downsample)
    x = torch.from_numpy(np.ascontiguousarray(features[:frames], dtype=np.float32))[None].to(model.mean.device)
    return model.encode(model.normalise(x))[0].cpu().numpy()


def latent_features(model, latents):
    """Latents (B, L, code_dim) tensor -> unnormalised features (B, L * downsample, D) through the
    decoder, differentiable: what the SSM's latent space and physics refinement decode with."""
    return model.denormalise(model.decode_latents(latents))


def decode(model, codes: np.ndarray, refine_steps: int = 0) -> np.ndarray:
    """Codes (L, Q) -> unnormalised features (L * downsample, D) float64; with `refine_steps`, the
    latent the codes stand for first takes that many steps of physics refinement (myocli/motion/refine.py)."""
    import torch

    from myocli.motion.refine import refine

    codes = torch.as_tensor(codes, dtype=torch.long, device=model.mean.device)[None]
    with torch.no_grad():
        latent = model.code_latents(codes)
    if refine_steps > 0:  # refined in units of the codebook's spread
        scale = model.latent_scale()
        latent = refine(latent / scale, lambda z: latent_features(model, z * scale), model.config.fps, refine_steps) * scale
    with torch.no_grad():
        return latent_features(model, latent)[0].double().cpu().numpy()


@dataclass
class ReconstructionSums:
    """Error sums that add up across sequences and processes; `summary()` turns them into figures."""

    frames: int = 0
    mpjpe: float = 0.0
    heading_mpjpe: float = 0.0
    pa_mpjpe: float = 0.0
    global_mpjpe: float = 0.0
    accel_frames: int = 0
    accel: float = 0.0
    code_counts: np.ndarray | None = None  # (Q, K)
    skipped: int = 0

    def as_array(self) -> np.ndarray:
        head = [self.frames, self.mpjpe, self.heading_mpjpe, self.pa_mpjpe, self.global_mpjpe, self.accel_frames, self.accel, self.skipped]
        return np.concatenate([np.array(head, dtype=np.float64), self.code_counts.reshape(-1)])

    @classmethod
    def from_array(cls, values: np.ndarray, quantizers: int, codebook: int) -> ReconstructionSums:
        f, m, h, pa, g, af, a, skipped = values[:8]
        return cls(int(f), m, h, pa, g, int(af), a, values[8:].reshape(quantizers, codebook), int(skipped))

    def summary(self) -> dict:
        per_frame = max(self.frames, 1)
        usage = [metrics.codebook_usage(c) for c in self.code_counts]
        return {
            "mpjpe_mm": 1000 * self.mpjpe / per_frame,
            "heading_aligned_mpjpe_mm": 1000 * self.heading_mpjpe / per_frame,
            "pa_mpjpe_mm": 1000 * self.pa_mpjpe / per_frame,
            "global_mpjpe_mm": 1000 * self.global_mpjpe / per_frame,
            "accel_error_mm": 1000 * self.accel / max(self.accel_frames, 1),
            "codebook_usage": usage[0][0],
            "perplexity": usage[0][1],
            "codebook_usage_per_quantizer": [u for u, _ in usage],
            "perplexity_per_quantizer": [p for _, p in usage],
            "frames": self.frames,
            "sequences_skipped": self.skipped,
        }


def reconstruction_sums(model, features: list[np.ndarray], quantizers: int | None = None) -> ReconstructionSums:
    """Encode and decode each sequence, compare the positions (both from features: the
    reference is the clip itself for converted data, which starts at the origin facing +Z)."""
    q_used = quantizers or len(model.quantizers)
    sums = ReconstructionSums(code_counts=np.zeros((len(model.quantizers), model.config.codebook_size)))
    for f in features:
        if not can_encode(len(f), model.config.downsample):
            sums.skipped += 1
            continue
        frames = usable_length(len(f), model.config.downsample)
        codes = encode(model, f)[:, :q_used]
        target = feat.from_features(f[:frames])
        predicted = feat.from_features(decode(model, codes))
        sums.frames += frames
        sums.mpjpe += metrics.mpjpe(predicted, target).sum()
        sums.heading_mpjpe += metrics.heading_aligned_mpjpe(predicted, target).sum()
        sums.pa_mpjpe += metrics.pa_mpjpe(predicted, target).sum()
        sums.global_mpjpe += metrics.global_mpjpe(predicted, target).sum()
        if frames > 2:
            sums.accel_frames += frames - 2
            sums.accel += metrics.acceleration_error(predicted, target).sum()
        for q in range(codes.shape[-1]):
            sums.code_counts[q] += np.bincount(codes[:, q], minlength=model.config.codebook_size)
    return sums
