"""Atomic writes: whole files only, ordinary permissions, nothing left behind."""

import os
import stat

import pytest

from faithmap.core.files import atomic_write_bytes


def test_atomic_write_gives_umask_permissions_and_leaves_no_temp(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "sub" / "a.json", b"{}")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"{}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = atomic_write_bytes(tmp_path / "a.txt", b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
