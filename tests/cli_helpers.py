"""Running `myo` the way a user's shell does, and checking its one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def myo(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "MYO_DEBUG"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "myocli", *args], capture_output=True, text=True, cwd=cwd, env=environment, timeout=timeout
    )


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
