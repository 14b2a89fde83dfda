"""Captioning metrics (BLEU-4, ROUGE-L) and text-to-motion retrieval figures (R@k, MM-Dist, diversity,
multimodality) on hand-computed cases, and the language model's instruction templates."""

from __future__ import annotations

import json
import math
from importlib import resources

import numpy as np
import pytest

from myocli.motion.text_metrics import bleu4, rouge_l, words
from myocli.retrieval.evaluator import Evaluator


def test_words_lowercases_and_splits_on_punctuation():
    assert words("A person, WALKS forward; then-turns left!") == [
        "a",
        "person",
        "walks",
        "forward",
        "then",
        "turns",
        "left",
    ]
    assert words("  the person's arm_swings  ") == ["the", "person's", "arm", "swings"]
    assert words("...") == []


def test_identical_sentences_score_one():
    sentence = "a person does one squat"
    assert bleu4([sentence], [[sentence]]) == pytest.approx(1.0)
    assert rouge_l([sentence], [[sentence]]) == pytest.approx(1.0)


def test_no_shared_words_score_zero():
    assert bleu4(["a person jumps high"], [["someone runs in circles"]]) == 0.0
    assert rouge_l(["a person jumps high"], [["someone runs in circles"]]) == 0.0


def test_bleu_is_zero_when_no_four_gram_matches():
    # hypothesis: the cat sat on the mat / reference: the cat is on the mat
    # p1 = 5/6 (all but "sat"), p2 = 3/5 (the cat, on the, the mat), p3 = 1/4 (on the mat), p4 = 0/3,
    # and without smoothing a zero precision makes the geometric mean zero.
    assert bleu4(["the cat sat on the mat"], [["the cat is on the mat"]]) == 0.0


def test_bleu_hand_computed():
    # hypothesis (8 words): a person walks forward and then turns left
    # reference  (9 words): a person walks forward and then turns right slowly
    # Only the n-grams containing "left" miss: p1 = 7/8, p2 = 6/7, p3 = 5/6, p4 = 4/5, whose product is 1/2.
    # The hypothesis is shorter (c = 8 < r = 9), so BP = exp(1 - 9/8).
    expected = math.exp(1 - 9 / 8) * (7 / 8 * 6 / 7 * 5 / 6 * 4 / 5) ** 0.25
    score = bleu4(
        ["a person walks forward and then turns left"], [["a person walks forward and then turns right slowly"]]
    )
    assert score == pytest.approx(expected, rel=1e-12)
    assert score == pytest.approx(math.exp(-0.125) * 0.5**0.25, rel=1e-12)


def test_brevity_penalty_for_a_short_hypothesis():
    # Every n-gram of the hypothesis is in the reference, so only the brevity penalty is left: exp(1 - 7/4).
    score = bleu4(["a person walks forward"], [["a person walks forward and then stops"]])
    assert score == pytest.approx(math.exp(1 - 7 / 4), rel=1e-12)
    assert score < 1.0


def test_brevity_uses_closest_reference_length_and_the_shorter_on_a_tie():
    # Hypothesis of 4 words, references of 3 and 5 words: both are 1 away, the 3 wins, so c > r and BP = 1.
    # (Picking the 5 would give exp(1 - 5/4).) All n-grams of the hypothesis are in the longer reference.
    assert bleu4(["a b c d"], [["a b c", "a b c d e"]]) == pytest.approx(1.0)
    # A 2-word alternative is further away than the 5-word one, so the 5 is used: BP = exp(1 - 5/4).
    assert bleu4(["a b c d"], [["a b", "a b c d e"]]) == pytest.approx(math.exp(1 - 5 / 4), rel=1e-12)


def test_clipping_counts_each_word_at_most_as_often_as_in_a_reference():
    # On its own "the the the the" vs "the cat" has unigram precision 1/4 (one "the" in the reference),
    # not 4/4, and no bigram match, so BLEU is 0.
    assert bleu4(["the the the the"], [["the cat"]]) == 0.0
    # In a corpus with a perfect second pair, the clipped counts add up as:
    #   n=1: (1 + 5) / (4 + 5), n=2: (0 + 4) / (3 + 4), n=3: (0 + 3) / (2 + 3), n=4: (0 + 2) / (1 + 2);
    # c = 9 > r = 2 + 5, so BP = 1. Without clipping n=1 would be 9/9 and n=2 would be 7/7.
    expected = (6 / 9 * 4 / 7 * 3 / 5 * 2 / 3) ** 0.25
    hypotheses = ["the the the the", "a person jumps up high"]
    references = [["the cat"], ["a person jumps up high"]]
    assert bleu4(hypotheses, references) == pytest.approx(expected, rel=1e-12)


def test_rouge_l_hand_computed():
    # hypothesis: a man walks to the left (6 words) / reference: the man quickly walks left (5 words)
    # LCS = "man walks left" = 3, so R = 3/5 and P = 3/6; with b = 1.2, F = (1 + b^2) R P / (R + b^2 P).
    r, p, b2 = 3 / 5, 3 / 6, 1.2**2
    expected = (1 + b2) * r * p / (r + b2 * p)
    assert rouge_l(["a man walks to the left"], [["the man quickly walks left"]]) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.732 / 1.32, rel=1e-12)


def test_rouge_l_is_the_mean_over_hypotheses():
    assert rouge_l(["a person sits down", "a person sits down"], [["a person sits down"], ["jump"]]) == pytest.approx(
        0.5
    )


def test_multiple_references_pick_the_best():
    hypothesis = "a person waves with the right hand"
    references = [["someone jumps over a box", hypothesis, "the person waves"]]
    assert bleu4([hypothesis], references) == pytest.approx(1.0)
    assert rouge_l([hypothesis], references) == pytest.approx(1.0)
    # The best reference alone gives the same score as offering it among worse ones.
    partial = "the man quickly walks left"
    assert rouge_l(["a man walks to the left"], [["jump", partial]]) == rouge_l(
        ["a man walks to the left"], [[partial]]
    )


@pytest.mark.parametrize("metric", [bleu4, rouge_l])
def test_mismatched_or_missing_references_raise(metric):
    with pytest.raises(ValueError):
        metric(["a person walks", "a person runs"], [["a person walks"]])
    with pytest.raises(ValueError):
        metric(["a person walks"], [[]])


@pytest.mark.parametrize("metric", [bleu4, rouge_l])
def test_empty_corpus_scores_zero(metric):
    assert metric([], []) == 0.0


# --- retrieval figures of text-to-motion (myocli/retrieval/evaluator.py) -------------------------------------


def retrieval_scores(motions_at: list[float], captions: list[str], captions_at: dict[str, float]) -> dict:
    """`Evaluator.scores` on stub embeddings instead of a trained evaluator's: every embedding lies on
    the line through (3, 4), a motion at x embedded as x * (3, 4), so two embeddings at x and y are
    exactly 5 |x - y| apart (Euclidean; a city-block distance would give 7 |x - y|)."""
    evaluator = Evaluator(ref=None, model=None)
    line = np.array([[3.0, 4.0]])
    evaluator.embed_captions = lambda candidates: line * np.array([[captions_at[c]] for c in candidates])
    embedded = line * np.array(motions_at, dtype=np.float64)[:, None]
    return evaluator.scores([None] * len(captions), captions, fps=20.0, embedded=embedded)


def test_retrieval_figures_hand_computed():
    # Captions at walk 0, run 10, jump 20 on the line; six motions, with their distance (in units
    # of 5) to walk / run / jump, and the rank of their own caption among the three:
    #   walk at 1    1 / 9 / 19    own nearest: rank 0
    #   walk at 5    5 / 5 / 15    tied with run: a tie counts against the motion, rank 1
    #   walk at 16   16 / 6 / 4    two nearer: rank 2
    #   run at 11    11 / 1 / 9    rank 0
    #   run at 14    14 / 4 / 6    rank 0
    #   jump at 13   13 / 3 / 7    run nearer: rank 1
    captions = ["walk", "walk", "walk", "run", "run", "jump"]
    report = retrieval_scores([1, 5, 16, 11, 14, 13], captions, {"walk": 0, "run": 10, "jump": 20})
    assert report["candidates"] == 3
    assert report["r_at_1"] == pytest.approx(3 / 6)  # 4/6 if the tie went to the motion's own caption
    assert report["r_at_2"] == pytest.approx(5 / 6)
    assert report["r_at_3"] == pytest.approx(6 / 6)
    assert report["r_at_1_per_caption"] == pytest.approx({"walk": 1 / 3, "run": 1.0, "jump": 0.0})
    # MM-Dist: mean distance of a motion to its own caption: 5 (1 + 5 + 16 + 1 + 4 + 7) / 6.
    assert report["mm_dist"] == pytest.approx(5 * 34 / 6, rel=1e-12)
    # Diversity: mean distance over the 15 pairs of motions. Sorted, the motions are at 1, 5, 11, 13, 14, 16,
    # and the k-th of n sorted points is in (k - 1) pairs as the larger and (n - k) as the smaller, so the
    # sum is 1 (-5) + 5 (-3) + 11 (-1) + 13 (1) + 14 (3) + 16 (5) = 104.
    assert report["diversity"] == pytest.approx(5 * 104 / 15, rel=1e-12)
    # Multimodality: mean pairwise distance within each caption's motions, then the mean over the
    # captions that have two or more (jump has one, so it is left out):
    #   walk: |1 - 5|, |1 - 16|, |5 - 16| = 4, 15, 11, mean 10;  run: |11 - 14| = 3;  (10 + 3) / 2 = 6.5.
    # (Weighting by pairs instead would give (30 + 3) / 4, counting jump as 0 would give 13 / 3.)
    assert report["multimodality"] == pytest.approx(5 * 6.5, rel=1e-12)
    assert "fid" not in report  # only against real motions


def test_a_motion_halfway_between_two_captions_misses_at_1_and_one_caption_each_has_no_multimodality():
    # Both motions at 0, halfway between walk (-5) and run (5): each is as near the other's caption
    # as its own, and a tie counts as a miss, so neither is found at 1 and both are at 2.
    report = retrieval_scores([0, 0], ["walk", "run"], {"walk": -5, "run": 5})
    assert (report["r_at_1"], report["r_at_2"], report["r_at_3"]) == (0.0, 1.0, 1.0)
    assert report["mm_dist"] == pytest.approx(25.0) and report["diversity"] == 0.0
    assert report["multimodality"] is None  # no caption has two motions to compare


# --- instruction templates for the language model --------------------------------------------------------------

PLACEHOLDERS = {"t2m": "{caption}", "m2t": "{motion}", "predict": "{motion}", "inbetween": "{motion}"}
CANONICAL = {
    "t2m": "Generate a motion: {caption}",
    "m2t": "Describe the motion: {motion}",
    "predict": "Continue the motion: {motion}",
    "inbetween": "Fill in the motion: {motion}",
}


def test_instruction_templates():
    path = resources.files("myocli") / "configs" / "lm" / "instructions.json"
    templates = json.loads(path.read_text(encoding="utf-8"))
    assert set(templates) == set(PLACEHOLDERS)
    for task, entries in templates.items():
        placeholder = PLACEHOLDERS[task]
        assert len(set(entries)) == len(entries) >= 20, task
        assert entries[0] == CANONICAL[task]
        for entry in entries:
            assert entry.count(placeholder) == 1, entry
            rest = entry.replace(placeholder, "")
            assert "{" not in rest and "}" not in rest, entry
            assert entry.isascii(), entry
