"""The H5 dataset format: round trip, the seed layout, and validation that names what is wrong."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from myocli import skeleton as sk
from myocli.data.h5 import Sequence, read_dataset, write_dataset
from myocli.errors import MyoError


def _sequences(count=3):
    rest = sk.rest_pose().astype(np.float32)
    return [
        Sequence(f"clip{i}", np.repeat(rest[None], 5 + i, axis=0), [f"a person stands {i}", "second caption"], group=f"g{i}")
        for i in range(count)
    ]


def _seed_file(path, motion, lengths, texts):
    with h5py.File(path, "w") as handle:
        handle["motion"] = motion
        handle["lengths"] = lengths
        handle.create_dataset("text", data=texts, dtype=h5py.string_dtype())


def test_round_trip_keeps_motion_captions_and_metadata(tmp_path):
    path = tmp_path / "d.h5"
    write_dataset(path, _sequences(), fps=30.0)
    data = read_dataset(path)
    assert len(data) == 3 and data.fps == 30.0
    assert data[2].motion.shape == (7, 28, 3) and data[2].captions == ["a person stands 2", "second caption"]
    assert data[1].group == "g1" and data[1].name == "clip1"
    with h5py.File(path) as handle:
        assert handle["motion"].shape == (3, 7, 84) and handle["motion"].dtype == np.float32
        assert handle.attrs["skeleton"] == "myo28" and handle.attrs["format_version"] == 1
        assert np.all(handle["motion"][0, 5:] == 0)  # zero past each length
    assert [p.name for p in tmp_path.iterdir()] == ["d.h5"]  # no temporary file left behind


def test_seed_layout_loads_unchanged(tmp_path):
    motion = np.zeros((2, 10, 84), np.float32)
    motion[0, :4] = sk.rest_pose().reshape(-1)
    motion[1, :10] = sk.rest_pose().reshape(-1)
    _seed_file(tmp_path / "seed.h5", motion, np.array([4, 10], np.int32), ["a person stands", "a person waits"])
    data = read_dataset(tmp_path / "seed.h5")
    assert [len(s) for s in data.sequences] == [4, 10] and data.fps == 20.0
    assert data[1].captions == ["a person waits"]
    np.testing.assert_allclose(data[0].motion[0], sk.rest_pose(), atol=1e-6)


@pytest.mark.parametrize(
    "motion, lengths, texts, message",
    [
        (np.zeros((2, 10, 78), np.float32), [5, 5], ["a", "b"], "78 features"),
        (np.zeros((2, 10, 84), np.int32), [5, 5], ["a", "b"], "dtype int32"),
        (np.zeros((2, 10, 84), np.float32), [5, 12], ["a", "b"], "sequence 1: length 12 is outside 1..T_max (10)"),
        (np.zeros((2, 10, 84), np.float32), [5, 5, 5], ["a", "b"], "2 motions but 3 lengths"),
    ],
)
def test_validation_names_the_problem(tmp_path, motion, lengths, texts, message):
    path = tmp_path / "bad.h5"
    _seed_file(path, motion, np.array(lengths, np.int32), texts)
    with pytest.raises(MyoError, match="bad.h5") as info:
        read_dataset(path)
    assert message in str(info.value)


def test_nan_is_reported_with_sequence_and_frame(tmp_path):
    path = tmp_path / "nan.h5"
    sequences = _sequences()
    sequences[1].motion[3, 5, 1] = np.nan
    write_dataset(path, sequences)
    with pytest.raises(MyoError, match=r"sequence 1 \('clip1'\): NaN or Inf in motion at frame 3"):
        read_dataset(path)
    assert read_dataset(path, check_values=False)[1].motion.shape == (6, 28, 3)


def test_other_skeletons_and_damaged_files_are_refused(tmp_path):
    path = tmp_path / "smpl.h5"
    write_dataset(path, _sequences(), attrs={"skeleton": "smpl22"})
    with pytest.raises(MyoError, match="skeleton is 'smpl22', not myo28"):
        read_dataset(path)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file at all" * 10)
    with pytest.raises(MyoError, match="not a readable HDF5 file"):
        read_dataset(junk)


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "keep.h5"
    write_dataset(path, _sequences(1))
    before = path.read_bytes()
    broken = _sequences(2)
    broken[1].motion = np.zeros((4, 27, 3), np.float32)  # cannot be stored as 84 features
    with pytest.raises(MyoError, match=r"sequence 1 \('clip1'\) is shaped \(4, 27, 3\)"):
        write_dataset(path, broken)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.h5"]


def test_written_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    path = tmp_path / "perm.h5"
    write_dataset(path, _sequences(1))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
