"""`--gpus N`: re-run the same command under `accelerate launch` with N processes per machine.

The child processes get MYO_LAUNCHED=1 so they train instead of launching again. Without
CUDA the processes run on the CPU and talk over gloo, which is how the tests exercise the
very same path on a laptop or CI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass

from myocli.errors import MyoError

LAUNCHED = "MYO_LAUNCHED"


@dataclass
class LaunchOptions:
    gpus: int = 1
    num_machines: int = 1
    machine_rank: int = 0
    main_process_ip: str | None = None
    main_process_port: int | None = None
    mixed_precision: str = "no"


def needs_launch(options: LaunchOptions) -> bool:
    return (options.gpus > 1 or options.num_machines > 1) and os.environ.get(LAUNCHED) != "1"


def launch_command(options: LaunchOptions, argv: list[str]) -> list[str]:
    if options.num_machines > 1 and not options.main_process_ip:
        raise MyoError("--num-machines > 1 needs --main-process-ip (the address of the machine with --machine-rank 0)")
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu",  # torchrun-style launcher; with no CUDA the processes use the CPU and gloo
        "--num_processes", str(options.gpus * options.num_machines),
        "--num_machines", str(options.num_machines),
        "--machine_rank", str(options.machine_rank),
        "--mixed_precision", options.mixed_precision,
        "--dynamo_backend", "no",
    ]  # fmt: skip
    if options.main_process_ip:
        command += ["--main_process_ip", options.main_process_ip]
    port = options.main_process_port
    if port is None and options.num_machines == 1:
        port = 0  # a free port, picked by the launcher: two runs on one machine never race for the default 29500
    if port is not None:
        command += ["--main_process_port", str(port)]
    return command + ["-m", "myocli", *argv]


def relaunch(options: LaunchOptions, argv: list[str] | None = None) -> int:
    """Run this command again under accelerate launch; returns its exit code.

    Ctrl-C and SIGTERM are passed on to the launcher, which stops the workers with SIGTERM;
    they save their training state, and this process waits for that and then exits with
    128 + the signal number, as a single-process run does.
    """
    command = launch_command(options, list(sys.argv[1:] if argv is None else argv))
    sys.stderr.write(f"Launching {options.gpus} process(es) per machine on {options.num_machines} machine(s) with accelerate\n")
    process = subprocess.Popen(command, env=os.environ | {LAUNCHED: "1"})
    received: list[int] = []

    def forward(number, _frame):
        received.append(number)
        process.send_signal(number)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 + received[0] if received else code


def in_launched_worker() -> bool:
    """True in a process started by a launcher (ours, or torchrun/accelerate launch by hand): a worker, not the command a user typed."""
    return os.environ.get(LAUNCHED) == "1" or "WORLD_SIZE" in os.environ


def is_main_rank() -> bool:
    """False in the workers of a multi-process run other than rank 0."""
    return os.environ.get("RANK", "0") == "0"
