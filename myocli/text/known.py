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


def nearest_known(encoder, prompt: str, known: list[str], count: int = 3) -> list[tuple[str, float]]:
    """The `count` known captions nearest to the prompt, with their cosine similarities, nearest first."""
    if not known:
        return []
    vectors = encoder.embed([prompt, *known]).float().numpy()
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = vectors[1:] @ vectors[0]
    order = np.argsort(-similarity)[:count]
    return [(known[i], round(float(similarity[i]), 3)) for i in order]


def snap(encoder, vectors, known: list[str], weight: float):
    """Caption vectors (N, D) moved `weight` of the way towards their nearest known caption's vector,
    for those at FAR_BELOW or nearer (a far prompt keeps its own vector); unit length again."""
    import torch

    reference = encoder.embed(known)
    similarity = torch.nn.functional.normalize(vectors, dim=-1) @ reference.T
    best, index = similarity.max(dim=1)
    moved = torch.nn.functional.normalize((1 - weight) * vectors + weight * reference[index], dim=-1)
    return torch.where((best >= FAR_BELOW)[:, None], moved, vectors)
