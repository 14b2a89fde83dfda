"""Helpers shared by the tests: running `myo` the way a user's shell does, checking its results and
one-line errors, comparing resumed weights, and the tiny tokenizer recipe."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def myo(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "MYO_DEBUG"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "myocli", *args], capture_output=True, text=True, cwd=cwd, env=environment, timeout=timeout
    )


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """A `myo` run that must have succeeded (its stderr shown when it did not)."""
    assert result.returncode == 0, result.stderr
    return result


def assert_clean_failure(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in result.stderr


def assert_resume_matches(straight: dict, resumed: dict) -> None:
    """Weights of a resumed training against an uninterrupted one, tensor by tensor.

    Equal up to float rounding, not bit for bit: PyTorch's CPU kernels are not bitwise
    reproducible from process to process (2 of 25 runs of the tiny tokenizer ended up to 2.4e-6
    away from the others after 30 steps, interrupted or not). One batch skipped wrongly
    on resume moves the weights by 1e-2 (the median tensor's largest change), so 1e-4 still
    catches every resume bug.
    """
    import torch

    assert straight.keys() == resumed.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=1e-4, atol=1e-4, msg=lambda m, key=key: f"{key}: {m}")


# A tokenizer small enough to train for a few steps in a test, as a user's own YAML file.
TINY_TOKENIZER = """\
model:
  width: 32
  depth: 1
  codebook_size: 32
  code_dim: 16
train:
  window: 16
  batch_size: 8
  max_steps: 6
  learning_rate: 1.0e-3
  warmup_steps: 0
  lr_schedule: constant
  log_every: 1
  eval_every: 3
  save_every: 2
"""


def add_tiny_tokenizer(trained_home: Path, home: Path) -> None:
    """Copy the trained tiny tokenizer (tokenizer/tok@1) into another registry home."""
    shutil.copytree(trained_home / "tokenizer" / "tok", home / "tokenizer" / "tok")


# A language model small enough to pretrain and instruction-tune for a few steps in a test.
TINY_LM = """\
model:
  t5: {d_model: 64, d_ff: 128, d_kv: 16, num_heads: 4, num_layers: 1, num_decoder_layers: 1, dropout_rate: 0.1}
  max_motion_tokens: 40
  max_text_tokens: 60
train: {max_steps: 12, batch_size: 8, learning_rate: 1.0e-3, log_every: 4, eval_every: 6, save_every: 6}
instruct: {max_steps: 8, batch_size: 8, learning_rate: 5.0e-4, log_every: 4, eval_every: 4, save_every: 4}
"""
