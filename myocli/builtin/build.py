"""Rebuild myo's built-in models from the permissively licensed mocap in ../shared/data.

    python -m myocli.builtin.build --data ../shared/data --package    # every stage, then package
    python -m myocli.builtin.build --data ../shared/data --holdout mm # the validation build: HDM05 actor mm held out

Each stage is the `myo` command a user would run, printed before it runs, with fixed seeds and
step counts (not minutes), so the build is the same on any machine:

1. the text encoder: MiniLM distilled into a static table (`myocli/text/minilm.py`);
2. the data: HDM05 (all actors but --holdout), CMU, DeepMimic and pybullet's clips, mirrored,
   with this project's captions (`captions.csv`: four sentences per motion), cyclic clips
   played on to 8 s. captions.csv also cuts turns out of DeepMimic's long walks, and plays
   HDM05's lie-down clips backwards as getting up (the only get-up clips are DeepMimic's two). Bandai Namco's clips (CC BY-NC 4.0) are never read;
3. the motion tokenizer (residual VQ) and the retrieval evaluator side by side (one core each),
   then the SSM generator in the tokenizer's latent;
4. `--package`: copy the three into `myocli/builtin/checkpoints/` in float16 with their model cards.

Stages whose checkpoint already exists in the work folder are skipped, so an interrupted build
goes on where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

NAME = "myo-base"  # of the packaged models
# The build trains under its own name: the names of built-in models are reserved in every registry
# (registry.new_version), and package.py renames the models as it copies them in.
STAGE_NAME = "myo-base-build"
HERE = Path(__file__).resolve().parent
CAPTIONS = HERE / "captions.csv"
HDM05_ACTORS = ("bd", "bk", "dg", "mm")
LOOP_SECONDS = 8.0
SEED = 0
TOKENIZER_STEPS = 6000
SSM_STEPS = 5000
RETRIEVAL_STEPS = 1000
# The generator's sampling settings, chosen on the validation build (benchmarks/builtin_eval.py; the
# figures of each candidate are in benchmarks/RESULTS.md): package.py writes them into its config.
SAMPLING = {"guidance": 6.0, "sample_steps": 32, "refine_steps": 20, "text_snap": 0.5}
LICENSES = {
    "hdm05": "CC BY-SA 3.0 (HDM05)",
    "cmu": "CMU mocap terms (free for all uses, no resale)",
    "deepmimic": "MIT (DeepMimic)",
    "pybullet": "zlib (pybullet_data)",
}


def caption_rows() -> dict[str, list[dict]]:
    """Clip key (hdm05:CLASS, cmu:TRIAL, deepmimic:CLIP) -> its rows of captions.csv: `text`, and
    `start`, `end`, `reverse` for rows that caption a piece of the clip (labels.csv's columns)."""
    table: dict[str, list[dict]] = {}
    with open(CAPTIONS, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            table.setdefault(row.pop("motion"), []).append(row)
    return table


def read_captions() -> dict[str, list[str]]:
    """Motion -> its sentences; a motion is a clip key, or a piece of one (KEY@START-END, KEY_reversed)."""
    table: dict[str, list[str]] = {}
    for key, rows in caption_rows().items():
        for row in rows:
            span = f"@{row['start'] or 0}-{row['end'] or 'end'}" if row["start"] or row["end"] else ""
            table.setdefault(key + span + ("_reversed" if row["reverse"] else ""), []).append(row["text"])
    return table


def clip_rows(data: Path, holdout: str | None) -> tuple[list[dict], list[dict]]:
    """labels.csv rows (absolute paths) for the training clips and for the held-out actor's clips."""
    import pybullet_data

    captions = caption_rows()
    train, held = [], []

    def add(rows, path: Path, key: str, dataset: str, skeleton: Path | None = None):
        if key not in captions:
            raise SystemExit(f"{CAPTIONS}: no captions for {key} ({path})")
        for caption in captions[key]:
            rows.append({"file": str(path.resolve()), **caption, "skeleton": str(skeleton.resolve()) if skeleton else "",
                         "license": LICENSES[dataset], "dataset": dataset})  # fmt: skip

    with open(data / "hdm05" / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            rows = held if row["actor"] == holdout else train
            add(rows, data / "hdm05" / row["file"], f"hdm05:{row['motion_class']}", "hdm05", data / "hdm05" / row["skeleton"])
    with open(data / "cmu" / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            skeleton = data / "cmu" / row["skeleton"] if row["skeleton"] else None
            add(train, data / "cmu" / row["file"], f"cmu:{Path(row['file']).stem}", "cmu", skeleton)
    for path in sorted((data / "deepmimic").rglob("humanoid3d_*.txt")):
        add(train, path, f"deepmimic:{path.stem}", "deepmimic")
    for path in sorted((Path(pybullet_data.getDataPath()) / "data" / "motions").glob("humanoid3d_*.txt")):
        add(train, path, f"deepmimic:{path.stem}", "pybullet")
    # The held-out actor is judged on its real clips as recorded (no pieces, nothing backwards).
    return train, [row for row in held if not (row["start"] or row["end"] or row["reverse"])]


def write_labels(rows: list[dict], path: Path) -> list[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "text", "start", "end", "reverse", "skeleton", "license", "dataset"])
        writer.writeheader()
        writer.writerows(rows)
    return sorted({row["file"] for row in rows})


class Builder:
    def __init__(self, data: Path, work: Path, holdout: str | None):
        self.data, self.work, self.holdout = data.resolve(), work.resolve(), holdout
        self.env = os.environ | {"MYO_HOME": str(self.work / "checkpoints")}
        self.work.mkdir(parents=True, exist_ok=True)
        self.log = open(self.work / "build.log", "a")

    def command(self, *args: str) -> list[str]:
        return ["myo", *args]

    def say(self, text: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {text}"
        print(line, file=sys.stderr, flush=True)
        self.log.write(line + "\n")
        self.log.flush()

    def run(self, *commands: list[str]) -> None:
        """Run the commands side by side (several: one core each); stop the build if any fails."""
        processes = []
        env = self.env | ({"OMP_NUM_THREADS": "1"} if len(commands) > 1 else {})
        for command in commands:
            shown = shlex.join(command)
            self.say("$ " + (shown if len(shown) < 400 else shown[:200] + f" ... ({len(command)} arguments)"))
            processes.append(subprocess.Popen(command, env=env, cwd=self.work, stdout=self.log, stderr=self.log))
        failed = [shlex.join(c) for c, p in zip(commands, processes, strict=True) if p.wait() != 0]
        if failed:
            raise SystemExit(f"failed: {failed[0]} (see {self.work / 'build.log'})")

    def has(self, kind: str) -> bool:
        return any((self.work / "checkpoints" / kind / STAGE_NAME).glob("v*/manifest.json"))

    def resume(self, kind: str) -> list[str]:
        """["--resume"] when an interrupted build left this stage's run with a saved state (a new run
        under its name would be refused), else []."""
        return ["--resume"] if any((self.work / "checkpoints" / kind / STAGE_NAME).glob("v*/training_state")) else []

    def encoder(self) -> Path:
        folder = self.work / "minilm-static"
        if not (folder / "encoder.json").is_file():
            self.run([sys.executable, "-m", "myocli.text.minilm", "-o", str(folder)])
        return folder

    def datasets(self) -> tuple[Path, Path | None]:
        train_rows, held_rows = clip_rows(self.data, self.holdout)
        train, held = self.work / "train.h5", (self.work / "heldout.h5" if self.holdout else None)
        if not train.is_file():
            files = write_labels(train_rows, self.work / "labels" / "train.csv")
            self.run(self.command("data", "convert", *files, "--labels", str(self.work / "labels" / "train.csv"),
                                  "--mirror", "--loop", str(LOOP_SECONDS), "--strict", "-o", str(train)))  # fmt: skip
        if held is not None and not held.is_file():
            files = write_labels(held_rows, self.work / "labels" / "heldout.csv")
            self.run(self.command("data", "convert", *files, "--labels", str(self.work / "labels" / "heldout.csv"), "--strict", "-o", str(held)))
        return train, held

    def models(self, train: Path, held: Path | None, encoder: Path) -> None:
        val = ["--val", str(held)] if held else []
        common = ["--name", STAGE_NAME, "--seed", str(SEED)]
        first = []
        if not self.has("tokenizer"):
            first.append(self.command("tokenizer", "train", "--data", str(train), *val, "--config", "tiny", "--num-quantizers", "6",
                                      "--max-steps", str(TOKENIZER_STEPS), *common, *self.resume("tokenizer")))  # fmt: skip
        if not self.has("retrieval"):
            first.append(self.command("retrieval", "train", "--data", str(train), *val, "--text-encoder", str(encoder),
                                      "--max-steps", str(RETRIEVAL_STEPS), *common, *self.resume("retrieval")))  # fmt: skip
        if first:
            self.run(*first)
        if not self.has("ssm"):
            self.run(self.command("ssm", "train", "--data", str(train), *val, "--latent", f"tokenizer/{STAGE_NAME}", "--text-encoder", str(encoder),
                                  "--balance", "--max-steps", str(SSM_STEPS), *common, *self.resume("ssm")))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the folder with hdm05/, cmu/ and deepmimic/")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: build/builtin, or build/holdout-ACTOR)")
    parser.add_argument("--holdout", choices=HDM05_ACTORS, help="leave this HDM05 actor out of training (the validation build)")
    parser.add_argument("--package", action="store_true", help="copy the models into myocli/builtin/checkpoints afterwards")
    parser.add_argument("--figures", type=Path, help="with --package: the validation build's figures (benchmarks/builtin_eval.py --json) for the model cards")
    args = parser.parse_args(argv)
    work = args.work or Path("build") / (f"holdout-{args.holdout}" if args.holdout else "builtin")
    builder = Builder(args.data, work, args.holdout)
    start = time.time()
    encoder = builder.encoder()
    train, held = builder.datasets()
    builder.models(train, held, encoder)
    builder.say(f"models built in {(time.time() - start) / 60:.1f} min")
    if args.package:
        import json

        from myocli.builtin.package import package

        package(builder.work / "checkpoints", figures=json.loads(args.figures.read_text()) if args.figures else None)
        builder.say(f"packaged into {HERE / 'checkpoints'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
