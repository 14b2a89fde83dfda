"""`myo demo`: serve a web page to try the model in a browser (Gradio, the optional extra `demo`).

Gradio is imported here, inside the command, so `myo --help` stays fast and the core install does
not need it. Its usage reports are turned off before it is imported (they are read from the
environment as well as from the page's own setting), nothing is shared through Gradio's relay
servers, and the page binds to 127.0.0.1 unless --host says otherwise.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import typer

from myocli.cli.numbers import number
from myocli.errors import MyoError

# Hosts that only this machine can reach; any other --host is warned about.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def demo(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on: 127.0.0.1 (this machine only), or 0.0.0.0 to let other machines in (with a warning: the page has no login)."),
    port: int = number(7860, "--port", low=1, high=65535, help="Port to serve on."),
    model: str | None = typer.Option(None, "--model", help="The generator, as for myo generate --model (default: the same as myo generate's, else the built-in ssm/myo-base)."),
    physics: str | None = typer.Option(None, "--physics", help="A tracking controller (rl/NAME) for the page's physics-replay switch (default: none, and no switch)."),
) -> None:
    """Serve a web page to try a model: a prompt in, a video and the .npy, .json and .bvh out; the same as an API.

    Example: myo demo   (then open http://127.0.0.1:7860; needs pip install -e ".[demo]")
    """
    if host not in LOCAL_HOSTS:
        sys.stderr.write(f"Warning: serving on {host}: every machine that can reach this one on port {port} can use the page "
                         "(and its CPU or GPU); there is no login. Use the default 127.0.0.1 to keep it to this machine.\n")  # fmt: skip
    _check_port(host, port)  # first: a taken port fails at once, not after Gradio's import and the model's load
    _import_gradio()
    from myocli.cli.demo_actions import Demo
    from myocli.cli.demo_page import build, serve

    workdir = Path(tempfile.mkdtemp(prefix="myo-demo-"))  # every action's files; removed when the demo stops
    try:
        loaded = Demo.load(model, workdir, physics)
        if loaded.note:
            sys.stderr.write(loaded.note + "\n")
        serve(build(loaded), host, port, workdir, on_ready=lambda url: _ready(url, loaded.generator.label))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _import_gradio() -> None:
    """Gradio, with its usage reports off, or one error naming the extra that installs it."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # Gradio reads this at launch as well as each page's own setting
    try:
        import gradio

        gradio.Blocks  # noqa: B018 (a folder named gradio where Python looks imports as an empty package)
    except (ImportError, AttributeError) as exc:
        raise MyoError(f'myo demo needs Gradio, which the core install leaves out ({exc}); install the extra: pip install -e ".[demo]"') from exc


def _check_port(host: str, port: int) -> None:
    """Refuse a port that cannot be served on (taken, or an address not of this machine), as Gradio would after the model loaded."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server sets it: a port just freed is free
            probe.bind(infos[0][4])
    except OSError as exc:
        raise MyoError(f"cannot serve on {host}:{port} ({exc.strerror or exc}); choose another --port (or --host)") from exc


def _ready(url: str, label: str) -> None:
    typer.echo(f"Serving {label} at {url} (Ctrl-C stops it)")
    sys.stdout.flush()  # a script waiting for this line (the tests) sees it at once, also through a pipe
