"""Benchmark the selective scan of myocli/ssm/model.py: which way of running it is fastest where.

Three measurements, each the median of --repeats runs:
  1. the bare scan kernel h_t = a_t h_{t-1} + b_t: a time loop vs Hillis-Steele doubling;
  2. one training step (forward + backward) of the tiny preset on a batch of 32 windows of
     200 frames: the scan as one autograd Function with the loop or the doubling kernel inside,
     and the recurrent form (autograd through every step);
  3. one 4-second sample (16 guided flow steps): parallel vs recurrent form.

Run from the repository root:  python benchmarks/ssm_scan.py [--device cpu|cuda] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time


def _median_seconds(fn, repeats: int, device: str) -> float:
    import torch

    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    from myocli.config import load_config
    from myocli.ssm import model as ssm

    device, repeats = args.device, args.repeats
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, {device}")
    print("1. scan kernel (batch, L, E, N):")
    for shape in [(32, 50, 256, 8), (32, 50, 256, 16), (64, 50, 1024, 16)]:
        a, b = torch.rand(shape, device=device), torch.randn(shape, device=device)
        cells = [f"{m} {1000 * _median_seconds(lambda m=m, a=a, b=b: ssm.linear_scan_kernel(a, b, m), repeats, device):8.1f} ms" for m in ("loop", "doubling")]
        print(f"   {str(shape):22s} " + "   ".join(cells))

    config = ssm.SSMConfig.from_dict(load_config("ssm", "tiny")[0]["model"])
    torch.manual_seed(0)
    model = ssm.MotionFlow(config).to(device)
    x = torch.randn(32, 200, config.feature_dim, device=device)
    t = torch.rand(32, device=device)
    text = ssm.byte_ids(["a person walks forward"] * 32, config.max_text_bytes).to(device)
    mask = torch.ones(32, 50, dtype=torch.bool, device=device)

    def step(scan: str):
        cond = model.text_condition(text)
        model.velocity(x, t, cond, mask, scan).pow(2).mean().backward()

    print("2. training step, tiny preset, 32 x 200 frames (forward + backward):")
    kernel = ssm.linear_scan_kernel
    for method in ("loop", "doubling"):
        ssm.linear_scan_kernel = lambda a, b, _method, m=method: kernel(a, b, m)
        print(f"   parallel form, {method:8s} kernel {_median_seconds(lambda: step(ssm.PARALLEL), repeats, device):7.3f} s")
    ssm.linear_scan_kernel = kernel
    print(f"   recurrent form (autograd per step) {_median_seconds(lambda: step(ssm.RECURRENT), repeats, device):7.3f} s")

    print("3. one 4-second sample, 16 flow steps with guidance:")
    cond = model.text_condition(text[:1])
    for scan in (ssm.PARALLEL, ssm.RECURRENT):
        seconds = _median_seconds(lambda scan=scan: model.sample(cond, torch.tensor([20]), torch.Generator().manual_seed(0), 16, 2.5, scan), repeats, device)
        print(f"   {scan:9s} {seconds:7.3f} s")


if __name__ == "__main__":
    main()
