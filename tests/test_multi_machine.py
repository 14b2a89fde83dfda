"""Two "machines" on localhost train one model together, as two nodes of a cluster would.

Each machine is its own `myo ... --num-machines 2 --machine-rank R --main-process-ip 127.0.0.1`
command with its own registry (MYO_HOME), as two hosts have their own disks: they meet over gloo
(no CUDA here), end with the same weights, and only rank 0 writes the checkpoint.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_machines_train_one_model_and_only_rank_0_writes_it(motion_sets, tiny_tokenizer_config, tmp_path):
    port = str(_free_port())
    homes = [tmp_path / "machine0", tmp_path / "machine1"]
    processes = []
    for rank, home in enumerate(homes):
        command = [sys.executable, "-m", "myocli", "tokenizer", "train", "--data", str(motion_sets["train"]),
                   "--config", str(tiny_tokenizer_config), "--name", "cluster", "--max-steps", "4", "--json",
                   "--num-machines", "2", "--machine-rank", str(rank), "--main-process-ip", "127.0.0.1",
                   "--main-process-port", port]  # fmt: skip
        environment = {k: v for k, v in os.environ.items() if k != "MYO_DEBUG"} | {"MYO_HOME": str(home)}
        processes.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment))
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr

    summary = json.loads(outputs[0][0])
    manifest = json.loads((homes[0] / "tokenizer" / "cluster" / "v1" / "manifest.json").read_text())
    assert summary["checkpoint"] == "tokenizer/cluster@1" and manifest["training"]["steps_done"] == 4
    assert manifest["training"]["num_processes"] == 2
    digests = manifest["training"]["rank_weights_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1]  # one model: both machines ended with the same weights
    assert outputs[1][0].strip() == ""  # rank 1 prints no summary
    assert not (homes[1] / "tokenizer").exists()  # nor writes anything to its registry
