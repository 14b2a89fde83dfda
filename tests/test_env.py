"""`myo env`: one JSON document of the facts a bug report needs, and the same facts as text."""

from __future__ import annotations

import json

import torch

from tests.helpers import myo, ok


def test_env_json_reports_this_machine(tmp_path):
    home = tmp_path / "registry"
    facts = json.loads(ok(myo("env", "--json", env={"MYO_HOME": str(home)})).stdout)
    assert set(facts) == {"myo", "python", "packages", "devices", "render", "ffmpeg", "registry", "environment"}
    assert facts["packages"]["torch"] == torch.__version__
    assert facts["devices"]["cuda_available"] == torch.cuda.is_available()
    assert facts["devices"]["torch_cuda_build"] == torch.version.cuda
    assert len(facts["devices"]["cuda"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert facts["devices"]["cpu"]["bf16"] is True  # CPU autocast to bfloat16 works with every torch myo supports
    assert facts["ffmpeg"]["version"].startswith("ffmpeg version")
    assert facts["registry"]["home"] == str(home.resolve()) and facts["registry"]["home_exists"] is False
    assert {"tokenizer/myo-base@1 built-in", "ssm/myo-base@1 built-in"} <= set(facts["registry"]["checkpoints"])
    assert facts["environment"]["MYO_HOME"] == str(home)


def test_env_names_why_mujoco_cannot_draw():
    """A broken GL setting is reported with the renderer `myo render` falls back to, not raised."""
    facts = json.loads(ok(myo("env", "--json", env={"MUJOCO_GL": "nonsense"})).stdout)
    assert facts["render"]["renderer"].startswith("pybullet")
    assert "MUJOCO_GL" in facts["render"]["mujoco_problem"] and "nonsense" in facts["render"]["mujoco_problem"]
    assert facts["environment"]["MUJOCO_GL"] == "nonsense"  # as the user set it, before myo's probes


def test_env_text_has_every_section():
    text = ok(myo("env")).stdout
    for section in ("myo:", "packages:", "devices:", "render:", "ffmpeg:", "registry:"):
        assert f"\n{section}" in "\n" + text, section
    assert f"  - torch: {torch.__version__}" in text
