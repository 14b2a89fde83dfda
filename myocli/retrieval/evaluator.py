"""Scoring motions with a trained retrieval evaluator: R-precision, FID, MM-Dist.

The evaluator (retrieval/model.py, trained by `myo retrieval train`) embeds motions and
captions in one space. Given motions made from captions, this module reports the measures
text-to-motion papers use, adapted to a held-out set with few distinct captions:

    R@k        the share of motions whose own caption is among the k captions nearest to
               them, out of the set's N distinct captions (papers use groups of 32 pairs;
               a set with 11 actions has 11 candidates, so N is reported with the figure)
    mm_dist    mean distance between a motion's embedding and its own caption's
    diversity  mean distance between the embeddings of two different motions of the set
    multimodality  the same within each caption's motions, averaged over captions with several
               (for generated motions: how much the samples of one text differ)
    fid        Frechet distance between Gaussians fitted to real and to generated motion
               embeddings (from few motions it is noisy: compare models on one set only)

The same measures of the real clips themselves are the ceiling a generator can reach (and the
diversity to match). R@1 per caption says which actions come out as themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from myocli import registry
from myocli.errors import MyoError
from myocli.motion import features as feat

KIND = "retrieval"
TOP_K = (1, 2, 3)


@dataclass
class Evaluator:
    ref: registry.CheckpointRef
    model: object  # MotionTextRetrieval, eval mode
    pretrained: object = None  # the frozen text encoder (ssm/text.load_pretrained) when the model reads one

    @classmethod
    def load(cls, spec: str) -> Evaluator:
        from myocli.retrieval.model import MotionTextRetrieval, RetrievalConfig
        from myocli.ssm.text import load_inside

        def check(ref, config):
            if config.feature_version != feat.FEATURE_VERSION or config.feature_dim != feat.FEATURE_DIM:
                raise MyoError(f"checkpoint {ref.label} reads motion features v{config.feature_version}; this myo makes "
                               f"v{feat.FEATURE_VERSION}; re-train it with `myo retrieval train`")  # fmt: skip

        loaded = registry.from_pretrained(spec, KIND, RetrievalConfig, lambda config, ref: MotionTextRetrieval(config), check)
        return cls(loaded.ref, loaded.model, load_inside(loaded.ref, loaded.config))

    @property
    def fps(self) -> float:
        return self.model.config.fps

    def check_fps(self, fps: float, where: str) -> None:
        if abs(fps - self.fps) > 1e-6:
            raise MyoError(f"{self.ref.label} scores motions at {self.fps:g} fps but {where} is at {fps:g}; "
                           f"re-convert it with `myo data convert ... --fps {self.fps:g}`")  # fmt: skip

    def embed_motions(self, motions: list[np.ndarray], fps: float, batch_size: int = 32) -> np.ndarray:
        """Positions (T, 28, 3) in metres, each at `fps` -> (N, embed_dim) unit vectors."""
        import torch

        from myocli.tokenizer.codec import motion_features

        self.check_fps(fps, "the motions given")
        longest = self.model.config.max_frames
        rows = []
        for start in range(0, len(motions), batch_size):
            chunk = [middle(motion_features(m, fps), longest) for m in motions[start : start + batch_size]]
            # Padded to max_frames as every training window is, so a motion's embedding does not
            # depend on the other motions of its batch (the convolutions see the padding).
            x = np.zeros((len(chunk), longest, feat.FEATURE_DIM), dtype=np.float32)
            mask = np.zeros(x.shape[:2], dtype=bool)
            for i, f in enumerate(chunk):
                x[i, : len(f)], mask[i, : len(f)] = f, True
            device = self.model.mean.device
            x, mask = torch.from_numpy(x).to(device), torch.from_numpy(mask).to(device)
            with torch.no_grad():  # padding is zero in normalised units, as in training windows
                x = (x - self.model.mean) / self.model.std * mask[..., None]
                rows.append(self.model.embed_motion(x, mask).float().cpu().numpy())
        return np.concatenate(rows) if rows else np.zeros((0, self.model.config.embed_dim), np.float32)

    def embed_captions(self, captions: list[str]) -> np.ndarray:
        import torch

        from myocli.ssm.text import text_input

        with torch.no_grad():
            ids = text_input(self.model.config, self.pretrained, captions).to(self.model.mean.device)
            return self.model.embed_text(ids).float().cpu().numpy()

    def scores(self, motions: list[np.ndarray], captions: list[str], fps: float, real: np.ndarray | None = None,
               embedded: np.ndarray | None = None) -> dict:  # fmt: skip
        """R@k, MM-Dist (and FID against `real`, embeddings of real motions) of motions made from captions;
        `embedded`: the motions' embeddings when the caller already has them."""
        if len(motions) != len(captions) or not motions:
            raise MyoError("retrieval scores need one caption per motion, and at least one motion")
        embedded = self.embed_motions(motions, fps) if embedded is None else embedded
        candidates = list(dict.fromkeys(captions))
        text = self.embed_captions(candidates)
        own = np.array([candidates.index(c) for c in captions])
        distances = np.linalg.norm(embedded[:, None] - text[None], axis=-1)  # (motions, candidates)
        # Captions as near as the motion's own rank ahead of it (ties are misses); 0: own caption is nearest.
        rank = (distances <= distances[np.arange(len(own)), own][:, None]).sum(1) - 1
        report = {f"r_at_{k}": float(np.mean(rank < k)) for k in TOP_K}
        report |= {"candidates": len(candidates), "mm_dist": float(distances[np.arange(len(own)), own].mean())}
        report["diversity"] = mean_pairwise_distance(embedded)
        # Multimodality: how different the motions of one caption are (captions with 2 or more).
        within = [mean_pairwise_distance(embedded[own == k]) for k in range(len(candidates)) if np.sum(own == k) > 1]
        report["multimodality"] = float(np.mean(within)) if within else None
        # Which actions come out as themselves: R@1 of each caption's motions.
        report["r_at_1_per_caption"] = {c: float(np.mean(rank[own == k] < 1)) for k, c in enumerate(candidates)}
        if real is not None:
            report["fid"] = frechet_distance(real, embedded)
        return report


def captioned(dataset) -> tuple[list[np.ndarray], list[str]]:
    """The set's clips that have a caption and at least one encoder step of frames, with their first caption."""
    from myocli.retrieval.model import DOWNSAMPLE

    kept = [(s.motion.astype(np.float64), next(c for c in s.captions if c.strip()))
            for s in dataset.sequences if len(s) >= DOWNSAMPLE and any(c.strip() for c in s.captions)]  # fmt: skip
    return [m for m, _ in kept], [c for _, c in kept]


def check_rankable(captions: list[str], where: str, remedy: str) -> None:
    """R@k ranks each motion's caption among the set's others: refuse a set where that means nothing
    (a clip without a caption, or fewer than two distinct captions), naming it and what to do."""
    distinct = {c for c in captions if c.strip()}
    if len(distinct) < 2 or any(not c.strip() for c in captions):
        raise MyoError(f"{where}: retrieval ranks each clip's caption among the others, so every clip needs a caption and "
                       f"the set at least two distinct captions (it has {len(distinct)}); {remedy}")  # fmt: skip


def mean_pairwise_distance(embedded: np.ndarray) -> float:
    """Mean distance between the embeddings of two different motions (0 for fewer than two)."""
    pairs = len(embedded) * (len(embedded) - 1)
    return float(np.linalg.norm(embedded[:, None] - embedded[None], axis=-1).sum() / pairs) if pairs else 0.0


def middle(features: np.ndarray, longest: int) -> np.ndarray:
    """The middle `longest` frames of a longer motion (the evaluator was trained on windows that long)."""
    cut = max(len(features) - longest, 0)
    return features[cut // 2 : cut // 2 + longest] if cut else features


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to the rows of a and of b:
    |mu_a - mu_b|^2 + tr(Ca + Cb - 2 (Ca^1/2 Cb Ca^1/2)^1/2), by symmetric eigendecompositions."""
    if len(a) < 2 or len(b) < 2:
        raise MyoError("FID needs at least two motions on each side")
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sum(np.sqrt(np.clip(cross, 0, None))))
