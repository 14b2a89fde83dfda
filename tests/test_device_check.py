"""benchmarks/device_check.py on a machine without CUDA: every stage runs on the CPU, the CUDA part
is reported as skipped, and the report holds each stage's figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "device_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the check would run the GPU plan")
def test_device_check_runs_every_stage_on_the_cpu_and_says_what_it_skipped(tmp_path):
    out = tmp_path / "check.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    stages = report["stages"]
    assert report["device"] == "cpu" and stages["cuda"]["status"] == "skipped" and "CPU" in stages["cuda"]["reason"]
    assert {name for name, stage in stages.items() if stage["status"] != "ok"} == {"cuda"}
    for trainer in ("tokenizer", "lm", "ssm", "retrieval", "rl"):
        assert stages[trainer]["samples_per_second"] > 0 and stages[trainer]["steps_done"] > 0, trainer
        assert stages[trainer]["peak_gpu_memory_mib"] is None  # no GPU, and the manifest says so
    assert stages["generate ssm/myo-base"]["per_motion_s_median"] > 0
    assert stages["generate lm/check"]["seconds_of_motion"] == 4.0
    assert min(stages["render"]["render_only_fps"]) > 0
    assert stages["rl env"]["steps_per_second"]["tracking env x16"] > 0
    assert report["env"]["devices"]["cuda_available"] is False
    assert "tokenizer" in result.stdout and "skipped" in result.stdout  # the table
