"""Atomic writes (`atomic.atomic_write`): whole or absent, never clobbering unless asked, and
finished files with the mode a plain write gives (mkstemp's 0600 must not survive the rename)."""

import os

import pytest

from chatterbox_cli.runtime.atomic import atomic_write


@pytest.fixture(params=[0o022, 0o027, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_finished_files_get_the_mode_a_plain_write_gives(tmp_path, umask):
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    with atomic_write(tmp_path / "sub" / "ours.bin") as fh:
        fh.write(b"x")
    ours = tmp_path / "sub" / "ours.bin"
    assert ours.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_write_leaves_nothing_and_an_existing_file_is_kept(tmp_path):
    target = tmp_path / "out.wav"
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"mine")
    with pytest.raises(FileExistsError), atomic_write(target, overwrite=False) as fh:
        fh.write(b"theirs")
    assert target.read_bytes() == b"mine" and list(tmp_path.iterdir()) == [target]
    with atomic_write(target) as fh:
        fh.write(b"new")
    assert target.read_bytes() == b"new" and list(tmp_path.iterdir()) == [target]
