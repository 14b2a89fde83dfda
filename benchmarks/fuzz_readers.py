"""A fuzzing campaign against every file reader, larger than the one in the test suite.

    python benchmarks/fuzz_readers.py --examples 500            # every reader
    python benchmarks/fuzz_readers.py --examples 200 --reader bvh --reader h5 --seed 3

Uses the inputs and checks of tests/test_fuzz_readers.py (real files from ../shared/data and
pybullet's clips, damaged by hypothesis; random bytes; odd arrays and H5 layouts): each input
must read into valid motions or end in one MyoError naming the file. Prints, per reader, how many
inputs were tried, how they ended, and every other failure by type with one example each. The
figures are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the fuzzing machinery lives with its test
import test_fuzz_readers as fuzz  # noqa: E402


def campaign(target: fuzz.Target, examples: int, random_seed: int) -> dict:
    """Feed one reader `examples` inputs; count outcomes, keep the first example of each failure."""
    counts: Counter[str] = Counter()
    failures: dict[str, dict] = {}

    @seed(random_seed)
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(data=st.data())
    def run(data):
        case = data.draw(target.inputs)
        outcome = fuzz.attempt(target, case)
        counts[outcome.kind] += 1
        if outcome.kind == "bug":
            entry = failures.setdefault(outcome.what, {"count": 0, "example": f"{case.seed}; {case.description}",
                                                       "message": outcome.detail[:300]})  # fmt: skip
            entry["count"] += 1

    start = time.perf_counter()
    run()
    return {"tried": sum(counts.values()), "ok": counts["ok"], "myo_error": counts["myo_error"], "bugs": counts["bug"],
            "failures": failures, "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=300, help="inputs per reader")
    parser.add_argument("--reader", action="append", choices=fuzz.READERS, help="only these readers (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis' random seed, for a reproducible campaign")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    shared = REPO.parent / "shared" / "data"
    import pybullet_data

    targets = fuzz.build_targets(shared, Path(pybullet_data.getDataPath()) / "data" / "motions")
    results = {}
    print(f"{'reader':<16} {'tried':>6} {'ok':>6} {'MyoError':>9} {'other':>6} {'seconds':>8}")
    for name in args.reader or fuzz.READERS:
        result = results[name] = campaign(targets[name], args.examples, args.seed)
        print(f"{name:<16} {result['tried']:>6} {result['ok']:>6} {result['myo_error']:>9} {result['bugs']:>6} {result['seconds']:>8}")
        for what, failure in result["failures"].items():
            print(f"    {what} x{failure['count']}: {failure['message']}\n        input: {failure['example']}")
    total = sum(r["bugs"] for r in results.values())
    print(f"\n{sum(r['tried'] for r in results.values())} inputs, {total} ended in something other than a result or a MyoError")
    if args.json:
        args.json.write_text(json.dumps({"examples": args.examples, "seed": args.seed, "readers": results}, indent=2))


if __name__ == "__main__":
    main()
