"""Mutation testing of myo's core modules: how many deliberately broken variants their tests catch.

    pip install mutmut==3.8.1
    python benchmarks/mutation.py                    # every module below
    python benchmarks/mutation.py --module registry  # one of them

For each module, mutmut (3.x) works in a scratch copy of the committed tree (HEAD), makes small changes to
the module's code one at a time (an operator swapped, a constant changed, a return value dropped...)
and runs the tests that cover each changed function. A mutant is killed when some test fails;
one that survives is a change no test notices. Prints, per module, the mutants killed, survived and
not covered, the score (killed / all), and the names of the survivors; --json also keeps each
survivor's diff. The figures are in benchmarks/RESULTS.md.
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

REPO = Path(__file__).resolve().parents[1]
# module -> the tests that cover it
MODULES = {
    "skeleton": ("myocli/skeleton.py", ["tests/test_skeleton.py"]),
    "registry": ("myocli/registry.py", ["tests/test_registry.py", "tests/test_runs_and_ckpt.py"]),
    "features": ("myocli/motion/features.py", ["tests/test_motion_features.py"]),
    "physics_loss": ("myocli/motion/physics_loss.py", ["tests/test_physics_loss.py", "tests/test_motion_metrics.py"]),
    "decoding": ("myocli/lm/decoding.py", ["tests/test_lm_decoding.py"]),
    "ppo": ("myocli/rl/ppo.py", ["tests/test_ppo.py"]),
    "policy": ("myocli/rl/policy.py", ["tests/test_ppo.py"]),  # split out of ppo.py; test_ppo.py still covers it
}
CONFIG = """
[tool.mutmut]
source_paths = ["myocli"]
only_mutate = ["{module}"]
pytest_add_cli_args_test_selection = {tests}
pytest_add_cli_args = ["-q", "-p", "no:cacheprovider"]
"""


def scratch_copy(folder: Path) -> None:
    """The committed tree (HEAD: what the figures describe, whatever is being edited) into folder."""
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-xf", "-"], cwd=folder, input=archive, check=True)
    # The tests find the shared mocap at ../shared/data beside the repository, and mutmut runs them
    # from its mutants/ folder inside it: the data is linked beside both.
    for beside in (folder.parent, folder):
        (beside / "shared").symlink_to(REPO.parent / "shared")


def run_module(name: str, children: int) -> dict:
    module, tests = MODULES[name]
    with tempfile.TemporaryDirectory(prefix=f"mutation-{name}-") as temporary:
        folder = Path(temporary) / "repo"
        folder.mkdir()
        scratch_copy(folder)
        with open(folder / "pyproject.toml", "a") as handle:
            handle.write(CONFIG.format(module=module, tests=json.dumps(tests)))
        # A test that runs `myo` in a child process runs the installed package, not the mutant: only what a
        # test calls in its own process can kill a mutant (mutmut's statistics also only see those calls).
        env = os.environ | {"OMP_NUM_THREADS": "1", "MYO_REQUIRE_DATA": "1"}
        start = time.time()
        run = subprocess.run(["mutmut", "run", "--max-children", str(children)], cwd=folder, env=env, capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"mutmut run failed for {name}:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
        subprocess.run(["mutmut", "export-cicd-stats"], cwd=folder, env=env, capture_output=True, check=True)
        stats = json.loads((folder / "mutants" / "mutmut-cicd-stats.json").read_text())
        results = subprocess.run(["mutmut", "results"], cwd=folder, env=env, capture_output=True, text=True, check=True).stdout
        names = [line.split(":")[0].strip() for line in results.splitlines() if line.strip().endswith(": survived")]
        # Each survivor's diff, kept: the scratch folder goes away with this function.
        survivors = {name: subprocess.run(["mutmut", "show", name], cwd=folder, env=env, capture_output=True, text=True).stdout
                     for name in names}  # fmt: skip
    total = stats["total"]
    return {"module": module, "tests": tests, "killed": stats["killed"], "survived": stats["survived"],
            "not_covered": stats.get("no_tests", 0), "timeout": stats.get("timeout", 0), "total": total,
            "score": stats["killed"] / total if total else 0.0, "minutes": (time.time() - start) / 60, "survivors": survivors}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", choices=sorted(MODULES), action="append", help="only these modules (default: all)")
    parser.add_argument("--children", type=int, default=os.cpu_count() or 1, help="mutants tested at once")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    report = {}
    for name in args.module or list(MODULES):
        report[name] = result = run_module(name, args.children)
        print(f"{name:13s} {result['module']:32s} killed {result['killed']:4d}  survived {result['survived']:3d}  "
              f"not covered {result['not_covered']:3d}  score {result['score']:.2f}  ({result['minutes']:.1f} min)", flush=True)  # fmt: skip
        for survivor in result["survivors"]:
            print(f"    survived: {survivor}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
