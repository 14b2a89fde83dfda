"""Text metrics for motion captioning (motion-to-text): corpus BLEU-4 and ROUGE-L.

Both compare generated captions (hypotheses) with the dataset's human captions (references);
every hypothesis may have several references, as HumanML3D gives three or so per clip.
Text is tokenised by `words`, so punctuation and case do not count.

BLEU-4 follows Papineni et al. (2002) at corpus level, without smoothing; ROUGE-L follows
Lin (2004) with the F-measure weighted towards recall (beta = 1.2), averaged over sentences.
Pure Python: captions are short and few, so there is nothing for numpy to speed up.
"""

from __future__ import annotations

import math
import re
from collections import Counter

BLEU_ORDER = 4
ROUGE_BETA = 1.2

# Anything that is not a letter, a digit or an apostrophe separates words ("person's" stays one word).
_SEPARATOR = re.compile(r"[^\w']|_")


def words(text: str) -> list[str]:
    """Lowercase `text` and split it into words; empty pieces are dropped."""
    return [w for w in _SEPARATOR.split(text.lower()) if w]


def _check(hypotheses: list[str], references: list[list[str]]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists")
    for i, refs in enumerate(references):
        if not refs:
            raise ValueError(f"hypothesis {i} has no references")


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu4(hypotheses: list[str], references: list[list[str]]) -> float:
    """Corpus-level BLEU-4 in [0, 1]: 0.0 when some n-gram order has no match at all (no smoothing)."""
    _check(hypotheses, references)
    matched = [0] * BLEU_ORDER  # clipped n-gram matches, summed over the corpus, per order
    total = [0] * BLEU_ORDER  # hypothesis n-grams, summed over the corpus, per order
    hyp_length = ref_length = 0

    for hypothesis, refs in zip(hypotheses, references, strict=True):
        hyp = words(hypothesis)
        ref_tokens = [words(r) for r in refs]
        hyp_length += len(hyp)
        # The brevity penalty compares with the reference closest in length (the shorter one on a tie),
        # so a hypothesis is not punished for being shorter than a long alternative reference.
        ref_length += min((abs(len(r) - len(hyp)), len(r)) for r in ref_tokens)[1]

        for n in range(1, BLEU_ORDER + 1):
            counts = _ngrams(hyp, n)
            # Clipping: an n-gram counts at most as often as it appears in any single reference,
            # which stops "the the the the" from scoring on a reference with one "the".
            most_in_a_reference: Counter = Counter()
            for r in ref_tokens:
                most_in_a_reference |= _ngrams(r, n)  # | keeps the maximum count per n-gram
            matched[n - 1] += sum(min(c, most_in_a_reference[g]) for g, c in counts.items())
            total[n - 1] += sum(counts.values())

    if hyp_length == 0 or min(matched) == 0:
        return 0.0  # also covers empty corpora; the log of a zero precision is undefined
    log_precision = sum(math.log(m / t) for m, t in zip(matched, total, strict=True)) / BLEU_ORDER
    brevity = 1.0 if hyp_length > ref_length else math.exp(1.0 - ref_length / hyp_length)
    return brevity * math.exp(log_precision)


def _lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence of two word lists (dynamic programming, one row at a time)."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def _rouge_l_sentence(hyp: list[str], ref: list[str]) -> float:
    lcs = _lcs_length(hyp, ref)
    if lcs == 0:
        return 0.0  # also covers empty sentences, where recall or precision would divide by zero
    recall, precision = lcs / len(ref), lcs / len(hyp)
    b2 = ROUGE_BETA**2
    return (1 + b2) * recall * precision / (recall + b2 * precision)


def rouge_l(hypotheses: list[str], references: list[list[str]]) -> float:
    """Mean sentence ROUGE-L F-measure in [0, 1], each hypothesis scored against its best reference."""
    _check(hypotheses, references)
    if not hypotheses:
        return 0.0
    scores = []
    for hypothesis, refs in zip(hypotheses, references, strict=True):
        hyp = words(hypothesis)
        scores.append(max(_rouge_l_sentence(hyp, words(r)) for r in refs))
    return sum(scores) / len(scores)
