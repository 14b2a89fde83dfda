"""Fingerprint what the trainers and generators compute, to check that a restructure changed no behaviour.

Trains every kind of model for a few steps with fixed seeds and tiny configs (the tests' recipes) in a
throw-away registry, generates a motion with fixed seeds from the built-in model and from the trained
generators, replays a clip under the trained controller, and writes every weight tensor and every
generated or simulated motion into one folder. Run it before and after a change and compare the two:

    python benchmarks/behaviour_fingerprint.py --out /tmp/fp-before
    ... change the code ...
    python benchmarks/behaviour_fingerprint.py --out /tmp/fp-after
    python benchmarks/behaviour_fingerprint.py --compare /tmp/fp-before /tmp/fp-after

Everything runs through the `myo` command (as `python -m myocli`), so the fingerprint does not depend on
where the code lives inside the package. Tensors are compared with rtol = atol = 1e-5, not bit for bit:
PyTorch's CPU kernels are not bitwise reproducible from process to process (tests/helpers.py). Needs
pybullet's clips and ../shared/data's CMU walk; takes about a minute on a free core.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from helpers import TINY_LM, TINY_TOKENIZER  # noqa: E402  (the tests' own recipes)

# The recipes of tests/test_retrieval.py and tests/test_ssm.py.
TINY_RETRIEVAL = """\
model: {max_frames: 64, width: 64, depth: 1, heads: 2, embed_dim: 32, text_width: 32, text_layers: 1, text_heads: 2}
train: {max_steps: 60, batch_size: 16, learning_rate: 2.0e-3, warmup_steps: 0, lr_schedule: constant, log_every: 20, eval_every: 30, save_every: 30}
"""
TINY_SSM = """\
model: {width: 32, depth: 2, state_size: 4, text_width: 32, text_layers: 1, max_frames: 80, sample_steps: 4}
train: {max_steps: 6, batch_size: 8, learning_rate: 1.0e-3, log_every: 2, eval_every: 3, save_every: 3}
"""
STEPS = ["--max-steps", "3", "--seed", "0"]  # few enough to run under load, enough to move every weight
PROMPT = "a person walks forward"


def myo(work: Path, *args: str) -> None:
    env = os.environ | {"MYO_HOME": str(work / "home")}
    env.pop("MYO_DEBUG", None)
    print("myo", *args, file=sys.stderr, flush=True)
    result = subprocess.run([sys.executable, "-m", "myocli", *args], cwd=work, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"`myo {' '.join(args)}` failed:\n{result.stderr}")


def run_everything(work: Path) -> None:
    recipes = {"tok.yaml": TINY_TOKENIZER, "lm.yaml": TINY_LM, "ret.yaml": TINY_RETRIEVAL, "ssm.yaml": TINY_SSM}
    for name, text in recipes.items():
        (work / name).write_text(text)
    # First, while the registry holds no generator of its own, `myo generate` uses the built-in model.
    myo(work, "generate", PROMPT, "--seed", "0", "--seconds", "2", "-o", "gen_builtin")
    myo(work, "data", "convert", "@pybullet", "-o", "clips.h5")
    myo(work, "data", "convert", str(REPO.parent / "shared" / "data" / "cmu" / "bvh" / "02_01.bvh"), "-o", "walk.h5")
    myo(work, "tokenizer", "train", "--data", "clips.h5", "--config", "tok.yaml", "--name", "tok", *STEPS)
    myo(work, "tokenizer", "encode", "tok", "--data", "clips.h5", "-o", "tokens.h5")
    myo(work, "lm", "pretrain", "--tokens", "tokens.h5", "--config", "lm.yaml", "--name", "lm", *STEPS)
    myo(work, "retrieval", "train", "--data", "clips.h5", "--config", "ret.yaml", "--name", "ret", *STEPS)
    myo(work, "ssm", "train", "--data", "clips.h5", "--config", "ssm.yaml", "--name", "ssm", *STEPS)
    myo(work, "rl", "train", "--data", "walk.h5", "--name", "rl", "--debug", "--seed", "0")
    # The trained generators, through their engines (the LM's decodes through the tokenizer).
    myo(work, "generate", PROMPT, "--seed", "0", "--seconds", "2", "--model", "lm/lm", "-o", "gen_lm")
    myo(work, "generate", PROMPT, "--seed", "0", "--seconds", "2", "--model", "ssm/ssm", "-o", "gen_ssm")
    # The trained controller replaying the walk in the simulator, with its search of nearby actions.
    myo(work, "rl", "eval", "rl", "--motion", "walk.h5:0", "--search", "4", "--seed", "0", "-o", "gen_rl_eval.npy")


def collect(work: Path, out: Path) -> None:
    """Every checkpoint's weights and its manifest's config, and every generated motion, flat in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    for weights in sorted((work / "home").rglob("*.safetensors")):
        label = "_".join(weights.relative_to(work / "home").with_suffix("").parts)  # e.g. tokenizer_tok_v1_model
        shutil.copy(weights, out / f"{label}.safetensors")
        manifest = weights.parent / "manifest.json"
        if manifest.is_file():
            config = json.loads(manifest.read_text()).get("config")
            (out / f"{label}.config.json").write_text(json.dumps(config, indent=1, sort_keys=True))
    for motion in sorted(work.glob("gen_*.npy")):
        shutil.copy(motion, out / motion.name)


def load(path: Path) -> dict:
    """A fingerprint file as {name: value}: tensors by name, a motion as one array, a config as one dict."""
    import numpy as np
    import torch
    from safetensors.torch import load_file

    if path.suffix == ".safetensors":
        return load_file(path)
    if path.suffix == ".npy":
        return {"motion": torch.from_numpy(np.load(path))}
    # A config's digest of its tokenizer's weights differs from run to run, as those weights are equal only
    # up to rounding; they are compared tensor by tensor in their own file. (humanoid_sha256 stays: the
    # humanoid's MJCF is built by code, exactly.)
    config = json.loads(path.read_text())
    return {"config": {key: value for key, value in config.items() if not key.endswith("tokenizer_sha256")}}


def difference(a, b) -> str | None:
    """How two values of a fingerprint differ (tensors beyond rounding, anything else at all), or None."""
    import torch

    if not isinstance(a, torch.Tensor):
        return None if a == b else "differs"
    try:
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    except AssertionError as exc:
        lines = str(exc).splitlines()
        return "; ".join(line.strip() for line in lines if line.startswith(("Mismatched", "Greatest"))) or lines[0]
    return None


def compare(a: Path, b: Path) -> bool:
    same = True
    names_a, names_b = {p.name for p in a.iterdir()}, {p.name for p in b.iterdir()}
    for name in sorted(names_a ^ names_b):
        print(f"MISSING  {name} (only in {a if name in names_a else b})")
        same = False
    for name in sorted(names_a & names_b):
        values_a, values_b = load(a / name), load(b / name)
        differing_keys = sorted(values_a.keys() ^ values_b.keys())
        problems = [f"keys differ: {differing_keys}"] if differing_keys else []
        for key in sorted(values_a.keys() & values_b.keys()):
            problem = difference(values_a[key], values_b[key])
            if problem:
                problems.append(f"{key}: {problem}")
        print(f"{'same' if not problems else 'DIFFERS':8} {name} ({len(values_a)} values)")
        for problem in problems:
            print(f"           {problem}")
        same = same and not problems
    print("all match" if same else "DIFFERENCES FOUND")
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path, help="Write the fingerprint into this (new or empty) folder.")
    group.add_argument("--compare", type=Path, nargs=2, metavar=("DIR_A", "DIR_B"), help="Compare two fingerprints.")
    args = parser.parse_args()
    if args.compare:
        sys.exit(0 if compare(*args.compare) else 1)
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"{args.out} is not empty")
    with tempfile.TemporaryDirectory(prefix="myo-fingerprint-") as work:
        run_everything(Path(work))
        collect(Path(work), args.out)
    print(f"fingerprint written to {args.out}: {len(list(args.out.iterdir()))} files")


if __name__ == "__main__":
    main()
