"""`myo demo`'s page: the Gradio layout over cli/demo_actions.py, and serving it.

Imported only by `myo demo`, after it found Gradio and turned its telemetry off. A failure of an
action is shown on the page as `myo generate` words it (demo_actions.message) and the server goes on.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import gradio as gr

from myocli.cli.demo_actions import EXAMPLES, MAX_SAMPLES, WATCH, Demo, either, message
from myocli.cli.generation import Sampling, Task
from myocli.errors import MyoError

TASK_LABELS = {
    WATCH: "Watch and export it (.mp4, .npy, .bvh)",
    Task.m2t: "Describe it (motion-to-text)",
    Task.predict: "Continue it (prediction)",
    Task.inbetween: "Refill its middle (in-betweening)",
}


def build(demo: Demo) -> gr.Blocks:
    """The page: a "From text" tab (whose action is the API's /generate) and a "From a motion" tab (/from_motion)."""
    g, defaults = demo.generator, demo.defaults()
    ssm, lm = g.kind == "ssm", g.kind == "lm"
    with gr.Blocks(title="myo demo", analytics_enabled=False, delete_cache=(3600, 3600)) as page:
        gr.Markdown("# myo: text to motion\n\n" + demo.description())
        with gr.Tab("From text"):
            with gr.Row():
                with gr.Column(scale=2):
                    prompt = gr.Textbox(label="Prompt", placeholder="a person walks forward", lines=2, elem_id="prompt")
                    gr.Examples([[p] for p in EXAMPLES], inputs=prompt, label="Examples")
                    with gr.Row():
                        seconds = gr.Number(0, label="Seconds (--seconds)", info="0: the model decides")
                        samples = gr.Slider(1, MAX_SAMPLES, 1, step=1, label="Samples (-n)", info="side by side")
                        seed = gr.Number(0, precision=0, label="Seed (--seed)", info="sample I uses seed + I")
                    with gr.Accordion("Sampling", open=False):
                        guidance = gr.Number(defaults.guidance, label="Guidance (--guidance)", info="1 is none; higher follows the text more closely", visible=ssm)
                        steps = gr.Number(defaults.steps, precision=0, label="Flow steps (--steps)", visible=ssm)
                        temperature = gr.Number(defaults.temperature, label="Temperature (--temperature)", info="0 is greedy", visible=lm)
                        top_k = gr.Number(defaults.top_k, precision=0, label="Top-k (--top-k)", info="0: all tokens", visible=lm)
                        top_p = gr.Number(defaults.top_p, label="Top-p (--top-p)", visible=lm)
                        refine = gr.Number(defaults.refine_steps, precision=0, label="Physics refinement steps (--refine-steps)", info="0 turns it off")
                    physics = gr.Checkbox(False, label=f"Replay in physics (--physics {demo.controller[0].label})" if demo.controller else "Replay in physics",
                                          visible=demo.controller is not None)  # fmt: skip
                    go = gr.Button("Generate", variant="primary", elem_id="generate")
                with gr.Column(scale=3):
                    video = gr.Video(label="Motion", autoplay=True, loop=True, interactive=False, elem_id="motion-video")
                    physics_video = gr.Video(label="Physics replay (with the switch on)", autoplay=True, loop=True, interactive=False, visible=demo.controller is not None)
                    summary = gr.Markdown(label="Summary", elem_id="summary")
                    files = gr.File(label="Downloads", file_count="multiple", interactive=False)

        # The API's /generate: every argument but the prompt optional, defaulting to the page's starting values.
        def generate(prompt, seconds=None, num_samples=1, seed=0, guidance=defaults.guidance, steps=defaults.steps, temperature=defaults.temperature,
                     top_k=defaults.top_k, top_p=defaults.top_p, refine_steps=defaults.refine_steps, physics=False):  # fmt: skip
            sampling = Sampling(temperature, top_k, top_p, guidance, steps, refine_steps)
            result = _run(demo.from_text, prompt, _length(seconds), num_samples, seed, sampling, bool(physics))
            replay = str(result.physics_video) if result.physics_video else None
            return str(result.video), replay, result.summary, [str(f) for f in result.files]

        inputs = [prompt, seconds, samples, seed, guidance, steps, temperature, top_k, top_p, refine, physics]
        outputs = [video, physics_video, summary, files]
        go.click(generate, inputs, outputs, api_name="generate", concurrency_id="model")
        prompt.submit(generate, inputs, outputs, api_visibility="private", concurrency_id="model")

        with gr.Tab("From a motion"):
            abilities = demo.abilities()
            tasks = [WATCH, *(task for task, why in abilities.items() if not why)]
            with gr.Row():
                with gr.Column(scale=2):
                    upload = gr.File(label="Motion: a .npy (T, 28, 3) at the model's frame rate, or a .bvh", file_types=[".npy", ".bvh"])
                    task = gr.Radio([(TASK_LABELS[t], getattr(t, "value", t)) for t in tasks], value=WATCH, label="Do")
                    cannot = [TASK_LABELS[t].split(" (")[1].rstrip(")") for t, why in abilities.items() if why]
                    if cannot:
                        lacking = next(why for why in abilities.values() if why)
                        gr.Markdown(f"`{g.label}` cannot do {either(cannot)} of a motion: that needs {lacking}. It can show and export one.")
                    with gr.Row(visible=len(tasks) > 1):
                        motion_seconds = gr.Number(0, label="Seconds (--seconds)", info="of the continuation or the middle; 0: the model decides")
                        motion_samples = gr.Slider(1, MAX_SAMPLES, 1, step=1, label="Samples (-n)")
                        motion_seed = gr.Number(0, precision=0, label="Seed (--seed)")
                    run = gr.Button("Run", variant="primary", elem_id="run-motion")
                with gr.Column(scale=3):
                    motion_video = gr.Video(label="Motion", autoplay=True, loop=True, interactive=False)
                    motion_summary = gr.Markdown(label="Summary")
                    motion_files = gr.File(label="Downloads", file_count="multiple", interactive=False)

        def from_motion(upload, task=WATCH, seconds=None, num_samples=1, seed=0):
            result = _run(demo.from_motion, upload, task, _length(seconds), num_samples, seed)
            return (str(result.video) if result.video else None), result.summary, [str(f) for f in result.files]

        run.click(from_motion, [upload, task, motion_seconds, motion_samples, motion_seed], [motion_video, motion_summary, motion_files],
                  api_name="from_motion", concurrency_id="model")  # fmt: skip
    return page


def _length(seconds):
    """The page's length field: a browser sends 0 for an empty number box, so 0 (or nothing) is the
    command's "no --seconds", the model's choice; any other value is checked as --seconds is."""
    return None if seconds is None or seconds == 0 else seconds


def _run(action, *args):
    """An action, its failure turned into the page's error message; the server keeps serving."""
    try:
        return action(*args)
    except MyoError as exc:
        raise gr.Error(message(exc), print_exception=False) from exc
    except Exception as exc:  # a bug: its traceback on the terminal, one line on the page
        traceback.print_exc(file=sys.stderr)
        raise gr.Error(message(exc), print_exception=False) from exc


def serve(page: gr.Blocks, host: str, port: int, workdir: Path, on_ready) -> None:
    """Serve the page until Ctrl-C or SIGTERM (which end it as a KeyboardInterrupt), then close the server.
    Nothing is shared through Gradio's servers, nothing reports usage, and only `workdir`'s files are served."""
    page.queue(default_concurrency_limit=1)
    try:
        page.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=True, quiet=True, show_error=True,
                    allowed_paths=[str(workdir)], footer_links=["api", "settings"], enable_monitoring=False,
                    mcp_server=False, ssr_mode=False, pwa=False)  # fmt: skip
    except OSError as exc:  # Gradio tries the one port and says only that it found none free
        raise MyoError(f"cannot serve on {host}:{port}: the port is taken, or {host} is not an address of this machine; "
                       "choose another --port (or --host)") from exc  # fmt: skip
    try:
        on_ready(page.local_url)
        while True:
            time.sleep(0.5)
    finally:
        page.close()
