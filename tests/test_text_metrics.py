"""Captioning metrics (BLEU-4, ROUGE-L) on hand-computed cases, and the language model's instruction templates."""

from __future__ import annotations

import json
import math
from importlib import resources

import pytest

from myocli.motion.text_metrics import bleu4, rouge_l, words


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
