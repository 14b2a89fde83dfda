"""Prompts and constrained decoding on an untrained T5: the rules hold whatever the weights say."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from myocli.lm import decoding, prompts
from myocli.lm import model as lm
from myocli.lm.decoding import MotionRule, TextRule, decode, pick
from myocli.lm.engine import LMEngine, LoadedLM
from myocli.lm.sampling import Sampling

CODES = 32


@pytest.fixture(scope="module")
def tiny():
    config = lm.LMConfig(t5={"d_model": 32, "d_ff": 64, "d_kv": 8, "num_heads": 4, "num_layers": 1, "num_decoder_layers": 1}, codebook_size=CODES)
    text_tokenizer = lm.byte_tokenizer()
    torch.manual_seed(0)
    model, vocab = lm.new_model(config, text_tokenizer)
    return model.eval(), vocab, prompts.Prompter(text_tokenizer, vocab)


def test_vocabulary_holds_the_motion_tokens_after_the_text(tiny):
    _, vocab, prompter = tiny
    assert vocab.offset == 384 and vocab.size == 384 + CODES + 3
    assert prompter.text_tokenizer.convert_ids_to_tokens(vocab.offset + 5) == "<motion_id_5>"
    assert list(vocab.codes([vocab.start, vocab.offset + 3, 65, vocab.offset + 31, vocab.end])) == [3, 31]


@pytest.mark.parametrize("temperature", [0.0, 1.0, 5.0])
def test_motion_answers_are_only_codes_between_start_and_end_of_the_asked_length(tiny, temperature):
    model, vocab, prompter = tiny
    ids = prompter.t2m(prompts.instructions()["t2m"][0], "a person walks", None)
    for length in (1, 7):
        answer = decode(model, ids, MotionRule(vocab, length, length), temperature, generator=torch.Generator().manual_seed(1))
        assert answer[0] == vocab.start and answer[-2:] == [vocab.end, vocab.eos]
        assert len(vocab.codes(answer)) == length == len(answer) - 3
    free = decode(model, ids, MotionRule(vocab, 1, 12), temperature, generator=torch.Generator().manual_seed(2))
    assert 1 <= len(vocab.codes(free)) <= 12 and len(vocab.codes(free)) == len(free) - 3


def test_text_answers_never_hold_motion_tokens(tiny):
    model, vocab, prompter = tiny
    ids = prompter.m2t(prompts.instructions()["m2t"][0], np.arange(10) % CODES)
    answer = decode(model, ids, TextRule(vocab, 20), 3.0, generator=torch.Generator().manual_seed(0))
    assert len(answer) <= 20 and answer[-1] == vocab.eos and answer[0] != vocab.eos
    assert not set(answer) & set(vocab.motion_related().tolist())


def test_pick_respects_top_k_and_top_p():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    generator = torch.Generator().manual_seed(0)
    assert pick(logits, 0.0, 0, 1.0, generator) == 0
    assert {pick(logits, 1.0, 2, 1.0, generator) for _ in range(200)} == {0, 1}
    assert {pick(logits, 1.0, 0, 0.75, generator) for _ in range(200)} == {0, 1}  # 0.5 + 0.3 reaches 0.75
    assert {pick(logits, 1.0, 0, 1.0, generator) for _ in range(400)} == {0, 1, 2, 3}


def test_training_examples_of_each_task(tiny):
    _, vocab, prompter = tiny
    codes = np.arange(20) % CODES
    rng = np.random.default_rng(0)
    for task in prompts.TASKS:
        template = prompts.instructions()[task][3]
        source, answer = prompts.training_example(prompter, task, codes, "a person hops", template, rng, 0.2)
        assert source[-1] == vocab.eos and answer[-1] == vocab.eos
        if task == "m2t":
            assert prompter.text_tokenizer.decode(answer, skip_special_tokens=True) == "a person hops"
            assert list(vocab.codes(source)) == list(codes)
        elif task == "t2m":
            assert list(vocab.codes(answer)) == list(codes)
        elif task == "predict":  # context + answer is the whole sequence
            assert list(vocab.codes(source)) + list(vocab.codes(answer)) == list(codes)
        else:  # one mask per missing code, and start + middle + end is the whole sequence
            middle = vocab.codes(answer)
            assert source.count(vocab.mask) == len(middle) >= 1
            head = vocab.codes(source[: source.index(vocab.mask)])
            assert list(head) + list(middle) + list(vocab.codes(source[source.index(vocab.mask) :])) == list(codes)


def test_splits_leave_something_to_generate():
    for length in range(3, 40):
        head, tail = prompts.inbetween_split(length, 0.35, 0.35)
        assert head >= 1 and tail >= 1 and length - head - tail >= 1
        assert 1 <= prompts.context_split(length, 0.5) <= length - 1


def test_pairs_are_a_pure_function_of_their_index(tiny):
    from myocli.lm.train import PairDataset

    _, _, prompter = tiny
    codes = [np.arange(n) % CODES for n in (3, 9, 150)]
    dataset = PairDataset(prompter, codes, [["a"], ["b", "c"], ["d"]], prompts.TASKS, prompts.instructions(), 100, 0.2, 50, seed=7)
    first = [dataset[i] for i in range(50)]
    assert first == [dataset[i] for i in range(50)]
    assert all(len(prompter.vocab.codes(a)) <= 100 for _, a in first)  # long sequences are cropped


@pytest.fixture(scope="module")
def engine_with_memory():
    """The engine `myo generate` uses, around a random 2-layer T5 whose next token depends on what it
    already wrote. At T5's default init scale a random model repeats one token forever, which a
    decoder that forgot its past would do too (measured); at 20x (initializer_factor) a decoder
    that sees only its last token picks another token at 17 of the 23 steps of the two answers
    below, and the best token leads the next by 11 logits or more, far above float noise."""
    t5 = {"d_model": 32, "d_ff": 64, "d_kv": 8, "num_heads": 4, "num_layers": 2, "num_decoder_layers": 2, "initializer_factor": 20.0}
    config = lm.LMConfig(t5=t5, codebook_size=CODES, max_motion_tokens=12, max_text_tokens=12)
    text_tokenizer = lm.byte_tokenizer()
    torch.manual_seed(0)
    model, vocab = lm.new_model(config, text_tokenizer)
    return LMEngine(LoadedLM(None, config, model.eval(), text_tokenizer, vocab, {}), tokenizer_model=None)


@pytest.mark.parametrize("task", ["t2m", "m2t"])
def test_cached_greedy_decoding_matches_full_passes_over_the_whole_prefix(engine_with_memory, task, monkeypatch):
    """Decoding feeds the decoder one new token a step and keeps the rest of the answer in its KV
    cache. Each step must give the logits a full uncached forward pass over the prompt and the
    whole answer so far gives, and greedy decoding must pick that pass's best allowed token."""
    engine, greedy = engine_with_memory, Sampling(temperature=0.0)
    model, vocab = engine.lm.model, engine.lm.vocab
    answers, steps = [], []  # (prompt, rule, answer) of each decode; (cached logits) of each decoder call
    real_decode = decoding.decode

    def recording_decode(model, input_ids, rule, *args, **kwargs):
        answer = real_decode(model, input_ids, rule, *args, **kwargs)
        answers.append((input_ids, rule, answer))
        return answer

    monkeypatch.setattr(decoding, "decode", recording_decode)
    hook = model.register_forward_hook(lambda _model, _args, output: steps.append(output.logits[0, -1].clone()))
    try:
        if task == "t2m":
            engine.text_to_codes("a person walks forward", 8, greedy)
        else:
            engine.codes_to_text(np.arange(10) % CODES, greedy)
    finally:
        hook.remove()

    [(prompt, rule, answer)] = answers
    assert len(steps) == len(answer) >= 8 and answer[-1] == vocab.eos  # several steps, one decoder call each
    prefix = [model.config.decoder_start_token_id]
    with torch.no_grad():
        for step, cached in enumerate(steps):
            full = model(input_ids=torch.tensor([prompt]), decoder_input_ids=torch.tensor([prefix])).logits[0, -1]
            # Float32 sums in another order: measured up to 5e-4 on logits of up to 1700 (4e-7 of the
            # largest); a decoder that sees only its last token is off by 700 or more.
            tolerance = 1e-5 * float(full.abs().max())
            torch.testing.assert_close(cached, full, rtol=0, atol=tolerance, msg=lambda m, step=step: f"step {step}: {m}")
            assert answer[step] == int(torch.argmax(full + rule.mask(answer[:step]))), f"step {step}"
            prefix.append(answer[step])


def allowed(mask: torch.Tensor) -> set[int]:
    return set(torch.nonzero(torch.isfinite(mask)).flatten().tolist())


def test_motion_rule_allows_the_end_exactly_from_min_codes_to_max_codes(tiny):
    """Guards MotionRule.mask step by step: start, then codes only until `min_codes` are written,
    then codes or <motion_end>, then only <motion_end> at `max_codes`, then </s>."""
    _, vocab, _ = tiny
    codes = set(range(vocab.offset, vocab.offset + CODES))
    rule = MotionRule(vocab, min_codes=2, max_codes=4)
    code = vocab.offset + 3
    assert allowed(rule.mask([])) == {vocab.start}
    assert allowed(rule.mask([vocab.start])) == codes
    assert allowed(rule.mask([vocab.start, code])) == codes
    assert allowed(rule.mask([vocab.start, code, code])) == codes | {vocab.end}
    assert allowed(rule.mask([vocab.start, code, code, code])) == codes | {vocab.end}
    assert allowed(rule.mask([vocab.start, code, code, code, code])) == {vocab.end}
    assert allowed(rule.mask([vocab.start, code, code, vocab.end])) == {vocab.eos}
    # One code is enough when min_codes is 1.
    assert allowed(MotionRule(vocab, 1, 4).mask([vocab.start, code])) == codes | {vocab.end}


def test_text_rule_forces_eos_only_at_the_last_token(tiny):
    """Guards TextRule.mask's length limit: an answer of `max_tokens` may hold `max_tokens - 1`
    text tokens before </s>, so </s> is forced only when that many are written."""
    _, vocab, _ = tiny
    rule = TextRule(vocab, max_tokens=5)
    text = 65
    assert vocab.eos not in allowed(rule.mask([]))
    assert text in allowed(rule.mask([text] * 3)) and vocab.eos in allowed(rule.mask([text] * 3))
    assert allowed(rule.mask([text] * 4)) == {vocab.eos}


def draws(logits, temperature, top_k, top_p, seed, n=200) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    return [pick(logits, temperature, top_k, top_p, generator) for _ in range(n)]


def test_temperature_divides_the_logits():
    """Guards `logits / temperature`: sampling at temperature T draws what temperature 1 draws
    from logits / T, with the same random numbers."""
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    for temperature in (0.5, 3.0):
        assert draws(logits, temperature, 0, 1.0, 4) == draws(logits / temperature, 1.0, 0, 1.0, 4)
    assert draws(logits, 0.5, 0, 1.0, 4) != draws(logits, 1.0, 0, 1.0, 4)  # and it matters


def test_top_k_keeps_exactly_the_k_best():
    """Guards the top-k threshold (the k-th best logit) and top_k = 1 (greedy at any temperature)."""
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    assert set(draws(logits, 1.0, 1, 1.0, 0)) == {0}
    assert set(draws(logits, 1.0, 3, 1.0, 0, n=400)) == {0, 1, 2}


def test_top_p_keeps_the_smallest_prefix_that_reaches_it():
    """Guards `>= top_p` in the nucleus: of four equally likely tokens, top_p = 0.5 keeps two
    (their mass reaches 0.5), not three."""
    assert len(set(draws(torch.zeros(4), 1.0, 0, 0.5, 0, n=400))) == 2
    assert len(set(draws(torch.zeros(4), 1.0, 0, 0.75, 0, n=400))) == 3


def test_pick_draws_from_its_own_generator_not_the_global_one():
    """Guards `generator=generator` in the draw: a seeded generator gives the same picks whatever
    the global torch seed is (what makes `--seed` reproducible per sample)."""
    logits = torch.zeros(8)
    torch.manual_seed(1)
    first = draws(logits, 1.0, 0, 1.0, 9, n=50)
    torch.manual_seed(2)
    assert draws(logits, 1.0, 0, 1.0, 9, n=50) == first
