"""The checkpoint registry: versions, names, manifests, and refusing tampered or foreign checkpoints."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest
import torch
from helpers import assert_clean_failure, myo

from myocli import registry
from myocli import skeleton as sk
from myocli.errors import MyoError


@pytest.fixture(autouse=True)
def registry_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MYO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _save(name="demo", kind="tokenizer", type_="vqvae", scale=1.0):
    ref = registry.new_version(kind, name)
    weights = {"layer.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3) * scale, "step": torch.tensor(3)}
    registry.save(ref, {"type": type_, "width": 3}, weights, metrics={"val": {"mpjpe_mm": 12.5}}, parents=[])
    return ref


def test_versions_latest_and_explicit_versions_resolve():
    first, second = _save(scale=1.0), _save(scale=2.0)
    assert (first.version, second.version) == (1, 2)
    assert registry.resolve("tokenizer/demo").version == 2
    assert registry.resolve("tokenizer/demo@1").path == first.path
    assert registry.resolve("demo").version == 2  # a bare name when only one kind has it
    assert registry.resolve(str(first.path)).version == 1
    _, config, tensors, manifest = registry.load("demo@1", "tokenizer", "vqvae")
    assert config == {"type": "vqvae", "width": 3} and torch.equal(tensors["layer.weight"], torch.arange(6.0).reshape(2, 3))
    assert manifest["metrics"]["val"]["mpjpe_mm"] == 12.5 and manifest["myo_version"]
    assert set(manifest["files"]) == {"config.json", "model.safetensors"}


def test_an_unfinished_version_is_not_latest_and_is_listed_as_such():
    _save()
    unfinished = registry.new_version("tokenizer", "demo")
    (unfinished.path / registry.STATE).mkdir()
    assert registry.resolve("tokenizer/demo").version == 1
    assert registry.resumable("tokenizer", "demo").version == 2
    statuses = {(r["name"], r["version"]): r["status"] for r in registry.list_all(builtin=False)}
    assert statuses == {("tokenizer/demo", 1): "complete", ("tokenizer/demo", 2): "training"}
    with pytest.raises(MyoError, match="no complete version 2"):
        registry.resolve("tokenizer/demo@2")


def test_tampered_weights_fail_verification_and_loading():
    ref = _save()
    assert registry.verify(ref.path) == []
    weights = ref.path / registry.WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    weights.write_bytes(bytes(data))
    problems = registry.verify(ref.path)
    assert len(problems) == 1 and "model.safetensors" in problems[0] and "sha256" in problems[0]
    with pytest.raises(MyoError, match="failed verification.*model.safetensors"):
        registry.load("tokenizer/demo", "tokenizer", "vqvae")


def test_edited_config_and_missing_files_are_caught():
    ref = _save()
    config = ref.path / registry.CONFIG
    config.write_text(json.dumps({"type": "vqvae", "width": 4}))
    assert any("config.json" in p for p in registry.verify(ref.path))
    (ref.path / registry.WEIGHTS).unlink()
    assert any("missing" in p for p in registry.verify(ref.path))


def test_wrong_kind_type_and_bad_names_are_refused():
    _save(name="lm-one", kind="lm", type_="t5")
    with pytest.raises(MyoError, match="is a lm, but a tokenizer is needed"):
        registry.resolve("lm/lm-one", "tokenizer")
    _save(name="odd", type_="something-else")
    with pytest.raises(MyoError, match="holds a 'something-else' model"):
        registry.load("tokenizer/odd", "tokenizer", "vqvae")
    with pytest.raises(MyoError, match="use letters"):
        registry.new_version("tokenizer", "../escape")
    with pytest.raises(MyoError, match="no checkpoint tokenizer/absent"):
        registry.resolve("tokenizer/absent")
    with pytest.raises(MyoError, match="KIND/NAME"):
        registry.resolve("nonsense/x/y")


def test_weights_are_safetensors_not_pickle():
    ref = _save()
    header = (ref.path / registry.WEIGHTS).read_bytes()[:8]
    assert int.from_bytes(header, "little") < 10_000  # a safetensors JSON header length, not a pickle/zip magic
    assert not (ref.path / registry.WEIGHTS).read_bytes().startswith(b"PK")


def _edit_manifest(ref, change) -> None:
    manifest = json.loads((ref.path / registry.MANIFEST).read_text())
    change(manifest)
    (ref.path / registry.MANIFEST).write_text(json.dumps(manifest))


def _myo_ckpt_verify(spec: str, home):
    return myo("ckpt", "verify", spec, env={"MYO_HOME": str(home)})


def test_swapped_weights_whose_manifest_entry_was_deleted_are_refused(registry_home):
    """Replacing model.safetensors and deleting its entry from manifest.json (so no hash can disagree)
    must not pass: the loader and `myo ckpt verify` refuse it, naming the file."""
    ref, other = _save(), _save(name="other", scale=5.0)
    (ref.path / registry.WEIGHTS).write_bytes((other.path / registry.WEIGHTS).read_bytes())
    _edit_manifest(ref, lambda m: m["files"].pop(registry.WEIGHTS))
    with pytest.raises(MyoError, match=r"tokenizer/demo@1 failed verification: .*manifest\.json: does not list model\.safetensors"):
        registry.load("tokenizer/demo", "tokenizer", "vqvae")
    assert_clean_failure(_myo_ckpt_verify("tokenizer/demo", registry_home), "failed verification", "does not list model.safetensors")


def test_a_config_whose_manifest_entry_was_deleted_is_refused(registry_home):
    """The same for config.json: edited, with its entry (and the copy of the config) changed to match."""
    ref = _save()
    (ref.path / registry.CONFIG).write_text(json.dumps({"type": "vqvae", "width": 300}))
    _edit_manifest(ref, lambda m: (m["files"].pop(registry.CONFIG), m.update(config={"type": "vqvae", "width": 300})))
    with pytest.raises(MyoError, match=r"failed verification: .*manifest\.json: does not list config\.json"):
        registry.load("tokenizer/demo", "tokenizer", "vqvae")
    assert_clean_failure(_myo_ckpt_verify("tokenizer/demo", registry_home), "does not list config.json")


@pytest.mark.parametrize("change", [{"format_version": 2}, {"format_version": 99}, {"format": "someone-elses"}], ids=["v2", "v99", "other-format"])
def test_an_unknown_manifest_format_is_refused_naming_the_manifest(registry_home, change):
    """A manifest of a newer format version (or another format) is refused before anything is read from it."""
    ref = _save()
    _edit_manifest(ref, lambda m: m.update(change))
    expected = re.escape(f"{ref.path / registry.MANIFEST}: not a myo-checkpoint v1 manifest; upgrade myo")
    with pytest.raises(MyoError, match=expected):
        registry.load("tokenizer/demo", "tokenizer", "vqvae")
    with pytest.raises(MyoError, match=expected):
        registry.verify(ref.path)
    assert_clean_failure(_myo_ckpt_verify(str(ref.path), registry_home), "manifest.json", "not a myo-checkpoint v1 manifest")


def test_a_manifest_that_is_not_json_is_refused_and_listed_as_damaged(registry_home):
    """A manifest.json cut short is refused naming it, by the loader and `myo ckpt verify`; `ckpt list` shows it damaged."""
    ref = _save()
    (ref.path / registry.MANIFEST).write_text('{"format": "myo-checkpoint", "files": ')  # cut short
    with pytest.raises(MyoError, match=re.escape(f"{ref.path / registry.MANIFEST}: not valid JSON") + ".*damaged"):
        registry.load("tokenizer/demo", "tokenizer", "vqvae")
    assert_clean_failure(_myo_ckpt_verify("tokenizer/demo", registry_home), "manifest.json", "not valid JSON")
    (row,) = registry.list_all(builtin=False)
    assert row["status"] == "damaged" and "not valid JSON" in row["problem"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(lambda r: (r.path / registry.CONFIG).write_text("{not json"), r"config\.json: (sha256 differs|not valid JSON)", id="config-not-json"),
        pytest.param(lambda r: _edit_manifest(r, lambda m: m.pop("format_version")), r"manifest\.json: ", id="no-format-version"),
        pytest.param(lambda r: _edit_manifest(r, lambda m: m.update(format_version="one")), r"manifest\.json: ", id="format-version-not-a-number"),
        pytest.param(lambda r: _edit_manifest(r, lambda m: m["files"][registry.WEIGHTS].pop("sha256")),
                     r"manifest\.json: .*model\.safetensors", id="weights-entry-without-sha256"),
        pytest.param(lambda r: (r.path / registry.MANIFEST).write_text("[]"), r"manifest\.json: ", id="manifest-not-an-object"),
    ],
)  # fmt: skip
def test_malformed_checkpoint_files_are_refused_naming_the_file(registry_home, damage, message):
    """Broken JSON in config.json, or a manifest missing what it must hold, is a clear refusal naming the file."""
    ref = _save()
    damage(ref)
    with pytest.raises(MyoError, match=message):
        registry.load(str(ref.path), "tokenizer", "vqvae")


@dataclass
class _TinyConfig:
    """A model config as every kind's: a `type`, the skeleton, and what the module is built from."""

    width: int = 3
    type: str = "tiny"
    skeleton: str = sk.NAME

    @classmethod
    def from_dict(cls, values: dict):
        return cls(**values)


class _Tiny(torch.nn.Module):
    def __init__(self, config: _TinyConfig, tied: bool = False):
        super().__init__()
        self.inp = torch.nn.Linear(config.width, config.width)
        self.out = torch.nn.Linear(config.width, config.width)
        if tied:  # as a T5 ties its embeddings: two names, one tensor
            self.out.weight = self.inp.weight


def _save_tiny(weights: dict, width: int = 3) -> registry.CheckpointRef:
    ref = registry.new_version("ssm", "tiny")
    registry.save(ref, {"type": "tiny", "skeleton": sk.NAME, "width": width}, weights)
    return ref


def test_from_pretrained_builds_the_module_and_loads_its_weights_in_eval_mode():
    saved = _Tiny(_TinyConfig())
    ref = _save_tiny(registry.tensors_to_save(saved))
    loaded = registry.from_pretrained("ssm/tiny", "ssm", _TinyConfig, lambda config, ref: _Tiny(config))
    assert loaded.ref.path == ref.path and loaded.config == _TinyConfig() and not loaded.model.training
    for name, tensor in saved.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name


def test_from_pretrained_runs_the_check_before_building():
    _save_tiny(registry.tensors_to_save(_Tiny(_TinyConfig())))
    built = []

    def refuse(ref, config):
        raise MyoError(f"{ref.label}: too old")

    with pytest.raises(MyoError, match="ssm/tiny@1: too old"):
        registry.from_pretrained("ssm/tiny", "ssm", _TinyConfig, lambda config, ref: built.append(1) or _Tiny(config), refuse)
    assert not built


def test_tied_weights_are_saved_once_and_fill_both_names_on_loading():
    saved = _Tiny(_TinyConfig(), tied=True)
    weights = registry.tensors_to_save(saved)
    assert sorted(weights) == ["inp.bias", "inp.weight", "out.bias"]  # out.weight is inp.weight
    _save_tiny(weights)
    loaded = registry.from_pretrained("ssm/tiny", "ssm", _TinyConfig, lambda config, ref: _Tiny(config, tied=True)).model
    assert torch.equal(loaded.out.weight, saved.inp.weight) and loaded.out.weight is loaded.inp.weight


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(lambda w: w.pop("out.weight"), r"missing \['out\.weight'\]", id="missing"),
        pytest.param(lambda w: w.update(extra=torch.zeros(1)), r"unexpected \['extra'\]", id="left-over"),
        pytest.param(lambda w: w.update({"out.bias": torch.zeros(4)}), "size mismatch", id="other-shape"),
    ],
)  # fmt: skip
def test_weights_that_do_not_fit_the_config_are_refused_with_one_error(change, message):
    """Every kind loads through from_pretrained, so this one refusal covers the tokenizer, the LM, the SSM,
    the retrieval evaluator and the policy alike."""
    weights = registry.tensors_to_save(_Tiny(_TinyConfig()))
    change(weights)
    _save_tiny(weights)
    with pytest.raises(MyoError, match=r"checkpoint ssm/tiny@1: its weights do not fit its config\.json \(.*" + message):
        registry.from_pretrained("ssm/tiny", "ssm", _TinyConfig, lambda config, ref: _Tiny(config))


# -- what the mutation run of benchmarks/mutation.py found unguarded ---------------------------------


def test_a_file_slipped_into_the_text_encoder_folder_is_refused():
    """A checkpoint that carries a frozen text encoder loads its files by path: every file under that
    folder must be one the manifest hashes, so one added afterwards (a swapped tokenizer) is refused."""
    ref = registry.new_version("ssm", "enc")
    (ref.path / "text_encoder").mkdir()
    (ref.path / "text_encoder" / "table.bin").write_bytes(b"\x00" * 8)
    registry.save(ref, {"type": "tiny", "text_encoder": "text_encoder"}, {"w": torch.zeros(2)}, extra_files=["text_encoder/table.bin"])
    assert registry.verify(ref.path) == []
    (ref.path / "text_encoder" / "tokenizer.json").write_text("{}")
    assert registry.verify(ref.path) == [f"{ref.path / 'text_encoder' / 'tokenizer.json'}: not listed in the manifest, so it cannot be checked"]
    with pytest.raises(MyoError, match=r"failed verification: .*tokenizer\.json: not listed"):
        registry.load("ssm/enc", "ssm", "tiny")


def test_a_manifest_without_the_config_entry_is_one_problem_not_a_crash():
    ref = _save()
    _edit_manifest(ref, lambda m: m["files"].pop(registry.CONFIG))
    assert registry.verify(ref.path) == [f"{ref.path / registry.MANIFEST}: does not list config.json, so it cannot be checked"]


def test_an_edited_config_is_named_exactly():
    ref = _save()
    (ref.path / registry.CONFIG).write_text(json.dumps({"type": "vqvae", "width": 4}))
    _edit_manifest(ref, lambda m: m["files"][registry.CONFIG].update(sha256=registry.sha256(ref.path / registry.CONFIG)))
    assert registry.verify(ref.path) == [f"{ref.path / registry.CONFIG}: differs from the config recorded in the manifest"]
    (ref.path / registry.CONFIG).write_text("[1, 2]")
    _edit_manifest(ref, lambda m: m["files"][registry.CONFIG].update(sha256=registry.sha256(ref.path / registry.CONFIG)))
    with pytest.raises(MyoError, match=re.escape(f"{ref.path / registry.CONFIG}: not a JSON object")):
        registry.verify(ref.path)


def test_the_manifest_records_what_was_saved():
    ref = _save(name="rec")
    manifest = registry.read_manifest(ref.path)
    assert (manifest["kind"], manifest["name"], manifest["version"], manifest["type"]) == ("tokenizer", "rec", 1, "vqvae")
    assert manifest["created"].endswith("+00:00") and manifest["git_commit"] == registry.git_commit()
    for name in (registry.CONFIG, registry.WEIGHTS):
        assert manifest["files"][name] == {"sha256": registry.sha256(ref.path / name), "bytes": (ref.path / name).stat().st_size}
    assert manifest["config"] == {"type": "vqvae", "width": 3}
    from safetensors import safe_open

    with safe_open(str(ref.path / registry.WEIGHTS), "pt") as weights:
        assert weights.metadata() == {"format": "pt", "type": "vqvae"} and sorted(weights.keys()) == ["layer.weight", "step"]


def test_a_checkpoint_folder_resolves_to_what_its_manifest_says_and_is_checked_for_kind():
    ref = _save(name="byfolder", kind="ssm", type_="tiny")
    found = registry.resolve(str(ref.path))
    assert (found.kind, found.name, found.version, found.path) == ("ssm", "byfolder", 1, ref.path)
    assert registry.resolve(str(ref.path), "ssm") == found
    with pytest.raises(MyoError, match=re.escape(f"{ref.path} is a ssm checkpoint, but a tokenizer is needed here")):
        registry.resolve(str(ref.path), "tokenizer")


def test_bare_names_latest_and_bad_versions():
    _save(name="twin", kind="tokenizer"), _save(name="twin", kind="lm", type_="t5"), _save(name="solo"), _save(name="solo")
    with pytest.raises(MyoError, match="'twin' is ambiguous: write one of tokenizer/twin, lm/twin"):
        registry.resolve("twin")
    assert registry.resolve("twin", "lm").kind == "lm"  # the kind asked for settles it
    assert registry.resolve("solo@latest").version == 2 and registry.resolve("tokenizer/solo@1").version == 1
    with pytest.raises(MyoError, match="the version after '@' must be a number or 'latest'"):
        registry.resolve("tokenizer/solo@newest")
    with pytest.raises(MyoError, match="no complete version 3 of tokenizer/solo; there are 1, 2"):
        registry.resolve("tokenizer/solo@3")


def test_the_names_of_built_in_models_are_refused_for_new_runs():
    with pytest.raises(MyoError, match="ssm/myo-base is the name of a built-in model; choose another --name"):
        registry.new_version("ssm", "myo-base")
    first = registry.new_version("ssm", "myo-base-2")
    assert (first.kind, first.name, first.version) == ("ssm", "myo-base-2", 1) and first.path.is_dir()


def test_the_list_gives_each_version_its_figures_and_names_damage():
    ref = _save(name="listed")
    _edit_manifest(ref, lambda m: m.update(training={"steps_done": 40}))
    (row,) = registry.list_all(builtin=False)
    files = registry.read_manifest(ref.path)["files"]
    assert row == {"name": "tokenizer/listed", "version": 1, "path": str(ref.path), "status": "complete", "type": "vqvae",
                   "created": registry.read_manifest(ref.path)["created"], "steps": 40, "metrics": {"val": {"mpjpe_mm": 12.5}},
                   "bytes": sum(f["bytes"] for f in files.values())}  # fmt: skip
    builtin = [r for r in registry.list_all() if r["status"] == "built-in"]
    assert {r["name"] for r in builtin} >= {"ssm/myo-base", "tokenizer/myo-base", "retrieval/myo-base"}
    (ref.path / registry.WEIGHTS).write_bytes(b"short")  # another size than the manifest's
    (row,) = registry.list_all(builtin=False)
    assert row["status"] == "damaged" and row["problem"].startswith(f"{ref.path / registry.WEIGHTS}: 5 bytes, not the")
    (row,) = registry.list_all(builtin=False, verify_files=True)
    assert row["status"] == "damaged" and "sha256 differs" in row["problem"]


def test_the_default_model_is_the_newest_complete_one_preferring_what_prefer_accepts():
    assert registry.newest("ssm") is None
    # "early" is listed before "late": only the creation times make "late" the newest.
    _save(name="early", kind="ssm", type_="tiny")
    _edit_manifest(registry.resolve("ssm/early"), lambda m: m.update(created="2026-01-01T00:00:00+00:00", tuned=True))
    _save(name="late", kind="ssm", type_="tiny")
    _save(name="other-kind", kind="lm", type_="t5")
    registry.new_version("ssm", "unfinished")  # no manifest: never the default
    newest = registry.newest("ssm")
    assert (newest.kind, newest.name, newest.version, newest.path) == ("ssm", "late", 1, registry.version_dir("ssm", "late", 1))
    preferred = registry.newest("ssm", prefer=lambda manifest: manifest.get("tuned"))
    assert (preferred.name, preferred.version) == ("early", 1)  # older, but preferred
    _save(name="late", kind="ssm", type_="tiny")  # the same second: the higher version wins
    _edit_manifest(registry.resolve("ssm/late@2"), lambda m: m.update(created=registry.read_manifest(newest.path)["created"]))
    assert registry.newest("ssm").version == 2


def test_a_version_to_remove_is_named_exactly_and_built_in_ones_are_refused():
    ref = _save(name="gone")
    unfinished = registry.new_version("tokenizer", "gone")
    assert registry.find_version("tokenizer/gone@1") == ref and registry.find_version("tokenizer/gone@2") == unfinished
    for spec in ("tokenizer/gone", "gone@1", "tokenizer/gone@latest", "nonsense/gone@1"):
        with pytest.raises(MyoError, match=re.escape(f"{spec!r}: name one version as KIND/NAME@N")):
            registry.find_version(spec)
    with pytest.raises(MyoError, match="no version 3 of tokenizer/gone under .*`myo ckpt list` shows what there is"):
        registry.find_version("tokenizer/gone@3")
    with pytest.raises(MyoError, match="ssm/myo-base@1 is a built-in model: it comes with myo, which never removes it"):
        registry.find_version("ssm/myo-base@1")
    registry.remove_version(unfinished)
    assert not unfinished.path.exists() and ref.path.is_dir()
    registry.remove_version(ref)  # the last version takes its name's folder with it
    assert not ref.path.parent.exists() and not list(ref.path.parent.parent.glob(".removing-*"))


def test_an_unfinished_run_is_described_with_what_resume_can_do():
    assert registry.describe_unfinished({"running": True, "reason": "running as pid 7"}) == "running as pid 7"
    assert registry.describe_unfinished({"running": False, "resumable": True, "reason": "interrupted"}) == (
        "interrupted; --resume goes on from its saved state")
    assert registry.describe_unfinished({"running": None, "resumable": False, "reason": "failed"}) == (
        "failed; nothing was saved, so there is nothing to resume")


def test_a_dataset_fingerprint_is_its_path_hash_and_size(tmp_path):
    data = tmp_path / "set.h5"
    data.write_bytes(b"myo" * 100)
    assert registry.dataset_fingerprint(data) == {"path": str(data), "sha256": registry.sha256(data), "bytes": 300}
    assert registry.dataset_fingerprint(str(data), known_sha256="ab")["sha256"] == "ab"  # already hashed: not read again
