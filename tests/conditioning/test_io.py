"""Atomic writes: nothing half-written under the final name."""

from pathlib import Path

import pytest

from conditioning.io import atomic_write


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as tmp:
            Path(tmp).write_text("partial")
            raise RuntimeError("crash mid-write")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_success_replaces_and_has_normal_permissions(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_write(target, "w") as tmp:
        Path(tmp).write_text("new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o044  # readable by others, not mkstemp's 0600


def test_unwritable_destination_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        with atomic_write(tmp_path / "missing" / "x.txt"):
            pass
