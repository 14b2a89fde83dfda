"""How near a prompt is to what a model was trained on: the warning for prompts far from every known motion.

A generator trained with a pretrained text encoder records its training captions in its
manifest (`known_captions`). A prompt whose cosine similarity to all of them is below
FAR_BELOW still gets a motion, with a warning naming the nearest known ones. With the built-in
static MiniLM table, paraphrases of the training motions scored 0.61-0.93 against their
nearest training caption and prompts for other activities (violin, cycling, cooking...)
0.21-0.50 (benchmarks/RESULTS.md), hence the threshold between them.
"""

from __future__ import annotations

import numpy as np

FAR_BELOW = 0.55


def nearest_known(encoder, prompt: str, known: list[str], reference, count: int = 3) -> list[tuple[str, float]]:
    """The `count` known captions nearest to the prompt, with their cosine similarities, nearest first;
    `reference`: the known captions' unit vectors (encoder.embed(known)), computed once by the caller."""
    vector = torch_normalise(encoder.embed([prompt]))[0].numpy()
    similarity = reference.numpy() @ vector
    order = np.argsort(-similarity)[:count]
    return [(known[i], round(float(similarity[i]), 3)) for i in order]


def snap(vectors, reference, weight: float):
    """Caption vectors (N, D) moved `weight` of the way towards their nearest known caption's vector
    (`reference`, unit rows), for those at FAR_BELOW or nearer (a far prompt keeps its own vector); unit length again."""
    import torch

    best, index = (torch_normalise(vectors) @ reference.T).max(dim=1)
    moved = torch_normalise((1 - weight) * vectors + weight * reference[index])
    return torch.where((best >= FAR_BELOW)[:, None], moved, vectors)


def torch_normalise(vectors):
    import torch

    return torch.nn.functional.normalize(vectors.float(), dim=-1)
