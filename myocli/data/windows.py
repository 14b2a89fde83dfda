"""Fixed-length training windows cut from whole sequences: a torch Dataset.

The sample stream is a pure function of (seed, sample index): sample i belongs to epoch
i // N (N sequences), whose order and crop offsets come from a generator seeded with
(seed, epoch). That makes training reproducible, lets a resumed run see exactly the
batches an uninterrupted run would have seen (the trainer just skips the ones done), and
lets Accelerate shard the stream across processes without a random sampler.

Sequences shorter than the window are padded with zeros (the mean, in normalised units)
and masked out of the loss, because most real clips are short (HDM05's median is under
two seconds) and dropping them would throw most of the data away.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import Dataset


class FeatureWindows(Dataset):
    def __init__(self, sequences: list[np.ndarray], window: int, num_samples: int, seed: int = 0):
        if not sequences:
            raise ValueError("no sequences to cut training windows from")
        self.sequences = [np.ascontiguousarray(s, dtype=np.float32) for s in sequences]
        self.lengths = np.array([len(s) for s in self.sequences])
        self.window = window
        self.num_samples = num_samples
        self.seed = seed
        self.feature_dim = self.sequences[0].shape[-1]

    def __len__(self) -> int:
        return self.num_samples

    @lru_cache(maxsize=4)  # noqa: B019 - a handful of epochs, freed with the dataset
    def _epoch_plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng((self.seed, epoch))
        order = rng.permutation(len(self.sequences))
        room = np.maximum(self.lengths[order] - self.window, 0)
        starts = (rng.random(len(order)) * (room + 1)).astype(np.int64)
        return order, starts

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch at once: (windows (B, window, D), mask (B, window))."""
        windows = np.zeros((len(indices), self.window, self.feature_dim), dtype=np.float32)
        mask = np.zeros((len(indices), self.window), dtype=bool)
        count = len(self.sequences)
        for row, index in enumerate(indices):
            order, starts = self._epoch_plan(index // count)
            seq = self.sequences[order[index % count]]
            piece = seq[starts[index % count] : starts[index % count] + self.window]
            windows[row, : len(piece)] = piece
            mask[row, : len(piece)] = True
        return torch.from_numpy(windows), torch.from_numpy(mask)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        windows, mask = self.__getitems__([index])
        return windows[0], mask[0]


def keep_batch(batch):
    """collate_fn for a dataset whose __getitems__ already returns the batch."""
    return batch
