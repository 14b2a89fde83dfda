"""The one script to run when a GPU is lent: every trainer, generation, rendering and the RL
environment on this machine's accelerator, in a single call of at most 8 minutes.

    python benchmarks/device_check.py [--out device_check.json] [--minutes 8]

With CUDA, each trainer (tokenizer, retrieval, LM, SSM, RL) runs a few dozen steps at a real
preset size with bf16 (with `--gpus N` over all GPUs when there are several); samples/s, peak GPU
memory and wall time come from each checkpoint's manifest. Then: `myo generate` latency of a 4-s
motion for the LM and the SSM (benchmarks/generate.py: model loaded, and the whole command), render
fps (benchmarks/render.py: MuJoCo over EGL), and the RL environment's steps/s
(benchmarks/rl_env.py). Without CUDA the same stages run on the CPU at tiny sizes, and the report
says what was skipped. It exits 0 when every stage ran (or was skipped for want of CUDA), 1 when
one failed. Writes one JSON (`myo env --json`, then each stage's figures) and prints a table.
The data is pybullet's DeepMimic clips (`@pybullet`), so it needs nothing beside the checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROMPT = "a person walks forward"

# Per device: trainer presets, optimizer steps, and the RL run's environment steps. The GPU sizes are
# the presets meant for one (tokenizer `paper`: MotionGPT's sizes; LM `small`: T5-small; SSM `base`).
PLANS = {
    "cuda": {"tokenizer": "paper", "lm": "small", "ssm": "base", "retrieval": "tiny", "steps": 60, "rl_steps": 3 * 16 * 128,
             "precision": "bf16", "render_frames": 400, "generate_samples": 5, "stage_timeout": 150},
    "cpu": {"tokenizer": "tiny", "lm": "tiny", "ssm": "tiny", "retrieval": "tiny", "steps": 10, "rl_steps": 16 * 128,
            "precision": "no", "render_frames": 60, "generate_samples": 2, "stage_timeout": 300},
}  # fmt: skip


class Check:
    """Runs the stages in order within a deadline, keeping each one's figures, skip reason or error."""

    def __init__(self, work: Path, minutes: float):
        self.work, self.deadline = work, time.monotonic() + minutes * 60
        self.env = os.environ | {"MYO_HOME": str(work / "registry"), "PYTHONUNBUFFERED": "1"}
        self.stages: dict[str, dict] = {}

    def skip(self, name: str, reason: str) -> None:
        self.stages[name] = {"status": "skipped", "reason": reason}
        print(f"[{name}] skipped: {reason}", file=sys.stderr)

    def run(self, name: str, command: list[str], timeout: float) -> subprocess.CompletedProcess | None:
        """One command, timed; None (and the stage marked failed or skipped) when it could not give figures."""
        left = self.deadline - time.monotonic()
        if left < 20:
            self.skip(name, "out of time (--minutes)")
            return None
        print(f"[{name}] $ {' '.join(command)}", file=sys.stderr)
        started = time.perf_counter()
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, env=self.env, timeout=min(timeout, left), cwd=self.work
            )
        except subprocess.TimeoutExpired:
            self.stages[name] = {"status": "failed", "error": f"timed out after {min(timeout, left):.0f} s"}
            return None
        wall = round(time.perf_counter() - started, 2)
        if result.returncode != 0:
            self.stages[name] = {
                "status": "failed",
                "wall_s": wall,
                "error": (result.stderr.strip().splitlines() or ["?"])[-1],
            }
            print(f"[{name}] FAILED: {self.stages[name]['error']}", file=sys.stderr)
            return None
        self.stages[name] = {"status": "ok", "wall_s": wall}
        return result

    def myo(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "myocli", *args]

    def train(self, name: str, args: list[str], timeout: float) -> None:
        """A trainer run with --json; its manifest's throughput and peak memory become the stage's figures."""
        result = self.run(name, self.myo(*args, "--json"), timeout)
        if result is None:
            return
        path = Path(json.loads(result.stdout)["path"])
        training = json.loads((path / "manifest.json").read_text())["training"]
        figures = {
            key: training.get(key)
            for key in ("steps_done", "seconds", "samples_per_second", "peak_gpu_memory_mib", "device")
        }
        if name == "rl":  # PPO reports environment steps, not samples
            metrics = json.loads((path / "manifest.json").read_text())["metrics"]["train"]
            figures["samples_per_second"] = round(metrics.get("charts/steps_per_second", 0.0), 1)
        self.stages[name] |= figures

    def benchmark(self, name: str, script: str, args: list[str], timeout: float) -> None:
        """One of the benchmarks/ scripts, whose JSON output becomes the stage's figures."""
        result = self.run(name, [sys.executable, str(HERE / script), *args], timeout)
        if result is not None:
            self.stages[name] |= json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("device_check.json"), help="where the JSON report goes")
    parser.add_argument("--minutes", type=float, default=8.0, help="stop starting stages after this long")
    args = parser.parse_args()

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    gpus = torch.cuda.device_count() if device == "cuda" else 1
    plan = PLANS[device]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="myo-device-check-") as tmp:
        check = Check(Path(tmp), args.minutes)
        environment = check.run("env", check.myo("env", "--json"), 120)
        report = {
            "device": device,
            "gpus": gpus,
            "plan": plan,
            "env": json.loads(environment.stdout) if environment else None,
        }
        if device == "cpu":
            check.skip(
                "cuda", "no CUDA device: every stage ran on the CPU instead, at tiny sizes, in float32, one process"
            )
        run_stages(check, device, plan, gpus)
        report |= {"stages": check.stages, "total_s": round(time.perf_counter() - started, 1)}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"wrote {args.out}")
    return 1 if any(stage["status"] == "failed" for stage in report["stages"].values()) else 0


def run_stages(check: Check, device: str, plan: dict, gpus: int) -> None:
    data, tokens = check.work / "pybullet.h5", check.work / "tokens.h5"
    if check.run("data", check.myo("data", "convert", "@pybullet", "--mirror", "-o", str(data)), 300) is None:
        return
    timeout = plan["stage_timeout"]
    common = [
        "--max-steps",
        str(plan["steps"]),
        "--mixed-precision",
        plan["precision"],
        "--gpus",
        str(gpus),
        "--seed",
        "0",
    ]
    check.train(
        "tokenizer",
        ["tokenizer", "train", "--data", str(data), "--config", plan["tokenizer"], "--name", "check", *common],
        timeout,
    )
    if check.stages["tokenizer"]["status"] == "ok":
        check.run("tokens", check.myo("tokenizer", "encode", "check", "--data", str(data), "-o", str(tokens)), timeout)
        if check.stages["tokens"]["status"] == "ok":
            check.train(
                "lm",
                ["lm", "pretrain", "--tokens", str(tokens), "--config", plan["lm"], "--name", "check", *common],
                timeout,
            )
        check.train("ssm", ["ssm", "train", "--data", str(data), "--latent", "tokenizer/check", "--config", plan["ssm"], "--name", "check",
                            *common], timeout)  # fmt: skip
    check.train(
        "retrieval",
        ["retrieval", "train", "--data", str(data), "--config", plan["retrieval"], "--name", "check", *common],
        timeout,
    )
    check.train(
        "rl",
        ["rl", "train", "--data", str(data), "--name", "check", "--total-steps", str(plan["rl_steps"]), "--seed", "0"],
        timeout,
    )

    samples = ["--samples", str(plan["generate_samples"]), "--device", device, "--json"]
    check.benchmark("generate ssm/myo-base", "generate.py", ["--model", "ssm/myo-base", *samples], timeout)
    if check.stages.get("lm", {}).get("status") == "ok":
        check.benchmark("generate lm/check", "generate.py", ["--model", "lm/check", *samples], timeout)
    check.benchmark("render", "render.py", ["--frames", str(plan["render_frames"]), "--json"], timeout)
    check.benchmark("rl env", "rl_env.py", ["--data", str(data), "--seconds", "2", "--num-envs", "1", "16"], timeout)


def print_table(report: dict) -> None:
    """One line per stage: its status, wall time and headline figures."""
    headline = ("samples_per_second", "peak_gpu_memory_mib", "per_motion_s_median", "whole_command_s", "load_s",
                "render_only_fps", "mp4_fps", "steps_per_second")  # fmt: skip
    print(f"device: {report['device']} x{report['gpus']}, {report['total_s']} s in all")
    for name, stage in report["stages"].items():
        figures = ", ".join(f"{key} {_short(stage[key])}" for key in headline if stage.get(key) is not None)
        detail = figures or stage.get("reason") or stage.get("error") or ""
        wall = f"{stage['wall_s']:7.1f} s" if "wall_s" in stage else " " * 9
        print(f"  {name:24s} {stage['status']:8s} {wall}  {detail}")


def _short(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "/".join(_short(v) for v in value)
    return f"{value:.3g}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    sys.exit(main())
