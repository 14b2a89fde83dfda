"""`--gpus N`: re-run the same command under `accelerate launch` with N processes per machine.

The child processes get MYO_LAUNCHED=1 so they train instead of launching again. Without
CUDA the processes run on the CPU and talk over gloo, which is how the tests exercise the
very same path on a laptop or CI.
"""

from __future__ import annotations

import os
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
    if options.main_process_port:
        command += ["--main_process_port", str(options.main_process_port)]
    return command + ["-m", "myocli", *argv]


def relaunch(options: LaunchOptions, argv: list[str] | None = None) -> int:
    """Run this command again under accelerate launch; returns its exit code."""
    command = launch_command(options, list(sys.argv[1:] if argv is None else argv))
    sys.stderr.write(f"Launching {options.gpus} process(es) per machine on {options.num_machines} machine(s) with accelerate\n")
    env = os.environ | {LAUNCHED: "1"}
    try:
        return subprocess.run(command, env=env).returncode
    except KeyboardInterrupt:  # the workers got the Ctrl-C too; they save and stop on their own
        return 130
