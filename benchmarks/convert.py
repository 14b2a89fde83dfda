"""Benchmark `myo data convert` on the HDM05 set and the myo28 forward-kinematics core.

Measures
  a. converting every HDM05 AMC clip with the library API (wall time, source and output
     frames per second, Python peak allocation via tracemalloc, process peak RSS);
  b. where that time goes: acclaim.read (parse + FK + joint mapping) versus
     retarget.normalise, with parsing (read_amc) split from kinematics (forward_kinematics);
  c. myocli.skeleton.forward_kinematics on 100k random frames (best of 3), and bone_lengths.

Run from the repository root:
    python benchmarks/convert.py [--data ../shared/data/hdm05] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from myocli import rotations, skeleton
from myocli.data import convert as conv
from myocli.data import retarget
from myocli.data.converters import acclaim

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "hdm05"


def bench_convert(data_dir: Path) -> dict:
    paths = conv.expand_sources([str(data_dir)])
    start = time.perf_counter()
    report = conv.convert(paths, conv.ConvertOptions())
    wall = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    # A second, separate run under tracemalloc so its overhead does not inflate the timing.
    tracemalloc.start()
    conv.convert(paths, conv.ConvertOptions())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    with open(data_dir / "labels.csv", newline="") as f:
        source_frames = sum(int(row["num_frames"]) for row in csv.DictReader(f))
    output_frames = sum(len(s.motion) for s in report.sequences)
    return {
        "clips": len(paths), "sequences": len(report.sequences), "failures": len(report.failures),
        "wall_s": wall, "source_frames": source_frames, "output_frames": output_frames,
        "source_fps": source_frames / wall, "output_fps": output_frames / wall,
        "tracemalloc_peak_mb": peak / 2**20, "peak_rss_mb": rss_mb,
    }  # fmt: skip


def bench_breakdown(data_dir: Path) -> dict:
    paths = conv.expand_sources([str(data_dir)])
    t_read = t_norm = t_asf = t_amc = t_fk = 0.0
    frames = 0
    for path in paths:
        asf = next(p for p in acclaim.skeleton_candidates(path) if p.is_file())
        t0 = time.perf_counter()
        clips = acclaim.read(path, asf)
        t1 = time.perf_counter()
        for clip in clips:
            retarget.normalise(clip)
        t2 = time.perf_counter()
        skel = acclaim.read_asf(asf)
        t3 = time.perf_counter()
        values = acclaim.read_amc(path, skel)
        t4 = time.perf_counter()
        acclaim.forward_kinematics(skel, values)
        t5 = time.perf_counter()
        t_read, t_norm, t_asf = t_read + t1 - t0, t_norm + t2 - t1, t_asf + t3 - t2
        t_amc, t_fk = t_amc + t4 - t3, t_fk + t5 - t4
        frames += len(values["root"])
    return {
        "read_s": t_read, "normalise_s": t_norm, "read_asf_s": t_asf, "read_amc_s": t_amc,
        "acclaim_fk_s": t_fk, "parsed_frames": frames,
    }  # fmt: skip


def bench_fk(frames: int = 100_000, repeats: int = 3) -> dict:
    rng = np.random.default_rng(0)
    local = rotations.euler_to_matrix(rng.uniform(-90, 90, (frames, skeleton.NUM_JOINTS, 3)), "zyx")
    root = np.zeros((frames, 3))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        positions, _ = skeleton.forward_kinematics(root, local)
        best = min(best, time.perf_counter() - start)
    start = time.perf_counter()
    skeleton.bone_lengths(positions)
    return {"fk_frames": frames, "fk_best_s": best, "bone_lengths_s": time.perf_counter() - start}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="HDM05 folder (amc/, asf/, labels.csv)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = parser.parse_args()
    if not (args.data / "labels.csv").is_file():
        sys.exit(f"{args.data}: not an HDM05 folder (no labels.csv); pass --data")
    results = bench_convert(args.data) | bench_breakdown(args.data) | bench_fk()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key:<22} {value:>14.3f}" if isinstance(value, float) else f"{key:<22} {value:>14}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
