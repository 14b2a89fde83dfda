"""Per-feature mean and standard deviation of a training set, for normalising model inputs.

The statistics are part of a model: they are saved in its `model.safetensors` (as buffers)
so a checkpoint always decodes with the numbers it was trained with.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

MIN_STD = 1e-3  # features that never change (a contact that is always 0) must not blow up


def feature_stats(features: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (float32, per feature) over every frame of every sequence."""
    total, total_sq, count = 0.0, 0.0, 0
    for f in features:
        f = np.asarray(f, dtype=np.float64)
        total = total + f.sum(axis=0)
        total_sq = total_sq + (f * f).sum(axis=0)
        count += len(f)
    if count == 0:
        raise ValueError("no frames to compute feature statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    return mean.astype(np.float32), np.maximum(std, MIN_STD).astype(np.float32)
