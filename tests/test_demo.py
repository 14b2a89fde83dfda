"""`myo demo`: the page's actions on the built-in model (they make what `myo generate` makes, and refuse
what it refuses with its words), the command without Gradio, and the server end to end: its API
through gradio_client and its page in headless Chromium.

The actions need no Gradio. The server tests need the demo extra and the browser test Chromium; both
skip without them, except in CI's slow step (MYO_REQUIRE_DEMO=1, tests/conftest.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_clean_failure, myo, ok

from myocli.builtin import DEFAULT_MODEL
from myocli.cli.demo_actions import MAX_SAMPLES, Demo, message
from myocli.cli.generation import Sampling, Task
from myocli.errors import MyoError

PROMPT = "a person walks forward"


@pytest.fixture(scope="module")
def builtin_demo(tmp_path_factory) -> Demo:
    """The page's actions over the built-in model, loaded once."""
    return Demo.load(DEFAULT_MODEL, tmp_path_factory.mktemp("demo_work"))


def _cli_message(stderr: str) -> str:
    """The message of a `myo` failure: the line after `Error: `, or the text in the box of a usage error,
    without the option's name (Click spells it its own way: `--num-samples / -n`)."""
    boxed = [line.strip("│ ").strip() for line in stderr.splitlines() if line.startswith("│")]
    text = " ".join(boxed) if boxed else stderr.strip().splitlines()[-1].removeprefix("Error: ")
    return _message_proper(text)


def _message_proper(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"^Invalid value for [^:]+: ", "", text)


# The actions, on the built-in model


def test_a_prompt_makes_what_myo_generate_makes_and_a_bvh(builtin_demo, tmp_path):
    result = builtin_demo.from_text(PROMPT, seconds=1.0, seed=3)
    npy, record_file, bvh = result.files
    assert [p.suffix for p in result.files] == [".npy", ".json", ".bvh"] and result.video.suffix == ".mp4"
    assert result.video.stat().st_size > 1000 and result.physics_video is None
    cli = json.loads(ok(myo("generate", PROMPT, "--model", DEFAULT_MODEL, "--seconds", "1", "--seed", "3", "-o", str(tmp_path / "walk"), "--json")).stdout)
    mine, theirs = json.loads(record_file.read_text()), cli["samples"][0]
    paths = ("npy", "json", "mp4")
    assert {k: v for k, v in mine.items() if k not in paths} == {k: v for k, v in theirs.items() if k not in paths}
    np.testing.assert_allclose(np.load(npy), np.load(tmp_path / "walk_0.npy"), atol=1e-5)  # one code path: the same motion
    assert mine["nearest_known"][0]["caption"] == PROMPT and "Nearest known motions" in result.summary

    from myocli.data.convert import ConvertOptions, convert_file

    back = convert_file(bvh, ConvertOptions())[0].motion  # the BVH opens as a myo28 motion of the same length
    assert back.shape == (20, 28, 3)


def test_several_samples_play_side_by_side(builtin_demo):
    import imageio.v2 as imageio

    result = builtin_demo.from_text("a person jumps", seconds=0.4, num_samples=2, seed=5)
    assert [r["seed"] for r in result.records] == [5, 6] and len(result.files) == 6
    assert result.video.name == "a_person_jumps_side_by_side.mp4"
    with imageio.get_reader(result.video) as reader:
        assert reader.get_meta_data()["size"] == (2 * 480, 360)


def test_a_far_prompt_warns_on_the_page(builtin_demo):
    result = builtin_demo.from_text("a chef chops vegetables", seconds=0.4)
    assert result.records[0]["far_from_known"] is True
    assert "**Warning**" in result.summary and "far from every motion" in result.summary


@pytest.mark.parametrize(
    ("page", "cli"),
    [
        (dict(prompt="  "), ["  "]),
        (dict(prompt=PROMPT, seconds=-1.0), [PROMPT, "--seconds", "-1"]),
        (dict(prompt=PROMPT, seconds=0.05), [PROMPT, "--seconds", "0.05"]),
        (dict(prompt=PROMPT, seconds=30.0), [PROMPT, "--seconds", "30"]),
        (dict(prompt=PROMPT, seed=-2), [PROMPT, "--seed", "-2"]),
        (dict(prompt=PROMPT, num_samples=0), [PROMPT, "-n", "0"]),
        (dict(prompt=PROMPT, sampling=Sampling(guidance=float("nan"))), [PROMPT, "--guidance", "nan"]),
    ],
    ids=["empty prompt", "negative length", "below one step", "too long", "negative seed", "no samples", "nan guidance"],
)
def test_bad_input_gets_the_message_myo_generate_gives(builtin_demo, tmp_path, page, cli):
    with pytest.raises(MyoError) as caught:
        builtin_demo.from_text(**page)
    result = myo("generate", *cli, "--model", DEFAULT_MODEL, "-o", str(tmp_path / "x"))
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr
    assert _message_proper(message(caught.value)) == _cli_message(result.stderr)
    assert not list(tmp_path.iterdir())


def test_the_page_refuses_more_samples_than_it_shows_and_knobs_of_another_kind(builtin_demo):
    with pytest.raises(MyoError, match=f"up to {MAX_SAMPLES} samples"):
        builtin_demo.from_text(PROMPT, num_samples=MAX_SAMPLES + 1)
    with pytest.raises(MyoError, match="whole number"):
        builtin_demo.from_text(PROMPT, seed=1.5)
    with pytest.raises(MyoError, match="no physics controller"):
        builtin_demo.from_text(PROMPT, seconds=0.4, physics=True)


def test_an_upload_is_watched_and_exported_and_a_broken_one_named(builtin_demo, tmp_path):
    made = builtin_demo.from_text(PROMPT, seconds=0.6)
    upload = tmp_path / "gradio_upload_4f2a" / "my walk.v2.npy"  # uploads arrive in a temporary folder under their own name
    upload.parent.mkdir()
    upload.write_bytes(made.files[0].read_bytes())
    watched = builtin_demo.from_motion(upload)
    assert watched.video.name == "my walk.v2.mp4" and [p.name for p in watched.files] == ["my walk.v2.npy", "my walk.v2.bvh"]
    np.testing.assert_array_equal(np.load(watched.files[0]), np.load(made.files[0]))
    exported = builtin_demo.from_motion(watched.files[1])  # the .bvh comes back as the same motion
    assert exported.summary.startswith("**my walk\\.v2\\.bvh**: 12 frames at 20 fps")

    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"\x93NUMPY not really")
    with pytest.raises(MyoError) as caught:
        builtin_demo.from_motion(broken)
    rendered = myo("render", "broken.npy", "-o", "x.mp4", cwd=tmp_path)  # the same reader as myo generate --motion
    assert_clean_failure(rendered, "broken.npy")
    assert message(caught.value) == rendered.stderr.strip().removeprefix("Error: ")
    bad_bvh = tmp_path / "uploads" / "take.bvh"
    bad_bvh.parent.mkdir()
    bad_bvh.write_text("HIERARCHY\nROOT Hips {\n")
    with pytest.raises(MyoError) as caught:
        builtin_demo.from_motion(bad_bvh)
    assert message(caught.value).startswith("take.bvh: ") and str(bad_bvh.parent) not in message(caught.value)
    with pytest.raises(MyoError, match="cannot read a .txt"):
        builtin_demo.from_motion(tmp_path / "notes.txt")


def test_the_page_says_what_the_builtin_model_cannot_do(builtin_demo, tmp_path):
    assert builtin_demo.generator.tasks == (Task.t2m,)
    text = builtin_demo.description()
    assert "ssm/myo-base@1" in text and "cannot do** motion-to-text, prediction or in-betweening" in text
    assert "Physics replay**: off" in text
    motion = tmp_path / "walk.npy"
    np.save(motion, np.zeros((8, 28, 3), np.float32))
    with pytest.raises(MyoError, match="cannot do predict: that needs a language model"):
        builtin_demo.from_motion(motion, "predict")


@pytest.mark.slow
def test_a_language_model_describes_continues_and_refills_an_upload(tmp_path_factory, trained_tiny_tokenizer, tiny_lm_tokens, cmu_walk, tmp_path, monkeypatch):
    """The tasks of a language model on an upload, as `myo generate --task ...` does them (a tiny LM: trains for a minute)."""
    from helpers import add_tiny_tokenizer

    home = tmp_path_factory.mktemp("demo_lm") / "home"
    env = {"MYO_HOME": str(home)}
    add_tiny_tokenizer(trained_tiny_tokenizer, home)
    common = ["--tokens", str(tiny_lm_tokens["train"]), "--max-steps", "2"]
    ok(myo("lm", "pretrain", *common, "--config", str(tiny_lm_tokens["config"]), "--name", "pre", env=env))
    ok(myo("lm", "instruct", "pre", *common, "--name", "it", env=env))
    walk = tmp_path / "walk.npy"
    np.save(walk, cmu_walk.motion.astype(np.float32))
    monkeypatch.setenv("MYO_HOME", str(home))
    demo = Demo.load("lm/it", tmp_path / "work")
    assert demo.generator.tasks == (Task.t2m, Task.m2t, Task.predict, Task.inbetween) and "cannot do" not in demo.description()
    described = demo.from_motion(walk, "m2t", num_samples=2)
    assert len(described.records) == 2 and "sample 1 (seed 1)" in described.summary and not described.files
    for task in ("predict", "inbetween"):
        result = demo.from_motion(walk, task, seconds=0.8, seed=2)
        cli = json.loads(ok(myo("generate", "--task", task, "--motion", str(walk), "--seconds", "0.8", "--seed", "2", "--model", "lm/it",
                                "-o", str(tmp_path / task), "--json", env=env)).stdout)["samples"][0]  # fmt: skip
        assert result.records[0]["generated_frames"] == cli["generated_frames"] and result.records[0]["motion_input"] == "walk.npy"
        np.testing.assert_allclose(np.load(result.files[0]), np.load(tmp_path / f"{task}_0.npy"), atol=1e-5)
    with pytest.raises(MyoError, match="applies to state-space generators"):
        demo.from_text(PROMPT, sampling=Sampling(guidance=3.0))
    with pytest.raises(MyoError, match="motion-to-text makes no motion to simulate"):
        demo.from_motion(walk, "m2t", physics=True)


@pytest.mark.slow
def test_the_physics_switch_replays_each_sample_as_generate_physics_does(cmu_walk_h5, tmp_path, monkeypatch):
    """With a controller (rl/t: two PPO iterations on a walk) the page replays each motion in the simulator."""
    home = {"MYO_HOME": str(tmp_path / "home")}
    ok(myo("rl", "train", "--data", str(cmu_walk_h5), "--name", "t", "--debug", env=home))
    monkeypatch.setenv("MYO_HOME", home["MYO_HOME"])
    demo = Demo.load(DEFAULT_MODEL, tmp_path / "work", physics="rl/t")
    assert "Physics replay**: under `rl/t@1`" in demo.description()
    one = demo.from_text(PROMPT, seconds=1.0, physics=True)
    assert one.physics_video.name == "a_person_walks_forward_0_physics.mp4" and one.physics_video.stat().st_size > 1000
    assert [p.name for p in one.files][-1] == "a_person_walks_forward_0_physics.npy" and "simulated:" in one.summary
    cli = json.loads(ok(myo("generate", PROMPT, "--model", DEFAULT_MODEL, "--seconds", "1", "--physics", "rl/t", "-o", str(tmp_path / "cli"),
                            "--json", env=home)).stdout)["samples"][0]  # fmt: skip
    assert one.records[0]["physics"]["policy"] == cli["physics"]["policy"] == "rl/t@1"
    np.testing.assert_allclose(np.load(one.files[-1]), np.load(tmp_path / "cli_0_physics.npy"), atol=1e-4)
    two = demo.from_text(PROMPT, seconds=0.4, num_samples=2, physics=True)
    assert two.physics_video.name == "a_person_walks_forward_side_by_side_physics.mp4" and len(two.files) == 8


# The command


def test_without_gradio_the_command_names_the_extra(tmp_path):
    """The core install has no Gradio: one Error line saying what to install (Gradio hidden from the import system here)."""
    argv = ["myo", "demo", "--port", str(_free_port())]
    code = f"import sys; sys.modules['gradio'] = None; from myocli.cli import main; sys.argv = {argv!r}; main()"
    environment = {k: v for k, v in os.environ.items() if k != "MYO_DEBUG"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=120)
    assert_clean_failure(result, "needs Gradio", 'pip install -e ".[demo]"')


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_another_host_is_warned_about_and_a_taken_port_refused_at_once(tmp_path):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = myo("demo", "--host", "0.0.0.0", "--port", str(port), cwd=tmp_path, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    warning, error = result.stderr.strip().splitlines()
    assert warning.startswith("Warning: serving on 0.0.0.0") and "no login" in warning
    assert error.startswith(f"Error: cannot serve on 0.0.0.0:{port}") and "--port" in error


# The server, end to end


@pytest.fixture(scope="module")
def server(gradio, tmp_path_factory):
    """`myo demo` on a free port, as a user starts it (the built-in model, an empty registry); stopped with Ctrl-C."""
    root = tmp_path_factory.mktemp("demo_server")
    (root / "tmp").mkdir()
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if k != "MYO_DEBUG"} | {
        "MYO_HOME": str(root / "home"), "GRADIO_TEMP_DIR": str(root / "gradio"), "TMPDIR": str(root / "tmp")}  # fmt: skip
    stderr = root / "stderr.txt"
    with stderr.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "myocli", "demo", "--port", str(port)], cwd=root, env=environment,
                                   stdout=subprocess.PIPE, stderr=log, text=True)  # fmt: skip
    try:
        first = _first_line(process, timeout=600)  # the server's one stdout line, once it serves
        url = f"http://127.0.0.1:{port}/"
        assert first == f"Serving ssm/myo-base@1 at {url} (Ctrl-C stops it)\n", (first, stderr.read_text())
        assert list((root / "tmp").glob("myo-demo-*")), "the work folder is under TMPDIR"
        yield {"url": url, "root": root}
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=120)
    assert code == 130 and stderr.read_text().strip().splitlines()[-1] == "Error: interrupted by SIGINT"  # as every myo command ends on Ctrl-C
    assert not list((root / "tmp").glob("myo-demo-*")), "the work folder outlived the server"


def _first_line(process: subprocess.Popen, timeout: float) -> str:
    """The first line the process prints, or "" when it ends or stays silent for `timeout` seconds."""
    import select

    ready, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline() if ready else ""


@pytest.mark.slow
def test_the_api_returns_the_video_and_the_motion_and_keeps_serving_after_bad_input(server, tmp_path):
    import imageio.v2 as imageio
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(server["url"], verbose=False, download_files=str(tmp_path))
    video, replay, summary, files = client.predict(PROMPT, api_name="/generate")
    assert video.endswith("a_person_walks_forward_0.mp4") and replay is None
    with imageio.get_reader(video) as reader:
        assert reader.get_meta_data()["size"] == (640, 480)
    assert [Path(f).name for f in files] == ["a_person_walks_forward_0.npy", "a_person_walks_forward_0.json", "a_person_walks_forward_0.bvh"]
    motion = np.load(files[0])
    assert motion.ndim == 3 and motion.shape[1:] == (28, 3) and np.isfinite(motion).all()
    assert json.loads(Path(files[1]).read_text())["frames"] == len(motion) and "Nearest known motions" in summary
    with pytest.raises(AppError, match="the text prompt is empty"):
        client.predict("", api_name="/generate")
    with pytest.raises(AppError, match="the shortest motion this model makes is 0.2 s"):
        client.predict(PROMPT, seconds=0.05, api_name="/generate")
    _, _, _, files = client.predict(PROMPT, seconds=0.4, seed=1, api_name="/generate")  # still serving
    assert np.load(files[0]).shape == (8, 28, 3)

    from gradio_client import handle_file

    video, summary, files = client.predict(handle_file(files[2]), api_name="/from_motion")  # the .bvh back in: watched and exported
    assert video.endswith("a_person_walks_forward_0.mp4") and [Path(f).suffix for f in files] == [".npy", ".bvh"]
    assert np.load(files[0]).shape == (8, 28, 3) and summary.startswith("**a\\_person\\_walks\\_forward\\_0\\.bvh**: 8 frames")
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"not a motion")
    with pytest.raises(AppError, match=r"^broken\.npy: not a readable numeric \.npy file"):
        client.predict(handle_file(broken), api_name="/from_motion")


@pytest.mark.slow
def test_the_page_shows_a_generated_motion_in_chromium(server, chromium, tmp_path):
    """A user's first visit: the page renders (not blank), an empty prompt is refused with myo's words,
    then a prompt gives a video the browser plays and the three downloads; nothing is fetched from elsewhere."""
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = chromium["browser"]
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(chromium["driver"]), options=options)
    try:
        url = server["url"]
        driver.get(url)
        wait = WebDriverWait(driver, 600)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#prompt textarea"))
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "myo: text to motion" in body and "ssm/myo-base@1" in body and "a person does one squat" in body
        driver.save_screenshot(str(tmp_path / "page.png"))
        colours = Image.open(tmp_path / "page.png").convert("L").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 16, "the page rendered blank"

        driver.find_element(By.CSS_SELECTOR, "#generate").click()  # no prompt yet
        wait.until(lambda d: "the text prompt is empty" in d.find_element(By.TAG_NAME, "body").text)

        driver.find_element(By.CSS_SELECTOR, "#prompt textarea").send_keys(PROMPT)
        driver.find_element(By.CSS_SELECTOR, "#generate").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#motion-video video[src]"))
        played = "const v = document.querySelector('#motion-video video'); return [v.src, v.videoWidth, v.readyState];"
        wait.until(lambda d: d.execute_script(played)[1] > 0)  # the browser decoded the H.264
        source, width, _ = driver.execute_script(played)
        assert source.startswith(url) and source.endswith("a_person_walks_forward_0.mp4") and width == 640
        body = driver.find_element(By.TAG_NAME, "body").text.replace("\n.", ".")  # the download list shows a name's extension apart
        for suffix in ("npy", "json", "bvh"):
            assert f"a_person_walks_forward_0.{suffix}" in body
        assert "sample 0 (seed 0)" in body

        requested = set()
        for entry in driver.get_log("performance"):
            event = json.loads(entry["message"])["message"]
            if event["method"] in ("Network.requestWillBeSent", "Network.webSocketCreated"):
                requested.add(event["params"].get("request", event["params"]).get("url", ""))
        elsewhere = [u for u in requested if not u.startswith((url, url.replace("http", "ws"), "data:", "blob:"))]
        assert requested and not elsewhere, elsewhere
    finally:
        driver.quit()
