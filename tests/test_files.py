from __future__ import annotations

import os
from pathlib import Path

import pytest

from coopkit.files import atomic_path


def test_failed_write_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "model.pkl"
    target.write_text("old")

    def interrupted_write() -> None:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        interrupted_write()
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["model.pkl"]


def test_written_file_gets_normal_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
