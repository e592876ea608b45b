"""The GPU check's parts: xz-compressed, cut into numbered parts, joined again when they arrive one at a time."""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.benchmarks.gpu_modules import load

parts = load("parts")


@pytest.fixture()
def wheels(tmp_path):
    """A folder of two files, one of them incompressible (so the parts are as big as asked)."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    (folder / "a-1.0-py3-none-any.whl").write_bytes(os.urandom(250_000))
    (folder / "b-2.0-py3-none-any.whl").write_text("small")
    return folder


def test_parts_arrive_one_per_call_and_join_to_the_same_files(wheels, tmp_path):
    written = parts.pack(wheels, tmp_path / "parts", part_bytes=100_000)
    assert len(written) == 3 and all(p.stat().st_size <= 100_000 for p in written)
    set_id = parts.parse_part(written[0]).set_id
    assert [p.name[:-9] for p in written] == [f"wheels.{set_id}.{k}-of-3" for k in (1, 2, 3)]

    arrived, stash, out = tmp_path / "arrived", tmp_path / "stash", tmp_path / "out"
    arrived.mkdir()
    for index, part in enumerate(written):
        for old in arrived.iterdir():  # each call brings only its own part
            old.unlink()
        part.rename(arrived / part.name)
        found, folder, missing = parts.gather([arrived], stash, out)
        assert found == set_id
        if index < 2:
            assert folder is None and len(missing) == 2 - index
    assert missing == []
    for original in wheels.iterdir():
        assert (folder / "wheels" / original.name).read_bytes() == original.read_bytes()


def test_a_damaged_part_is_refused(wheels, tmp_path):
    written = parts.pack(wheels, tmp_path / "parts", part_bytes=100_000)
    data = bytearray(written[1].read_bytes())
    data[5000] ^= 0xFF
    written[1].write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"{written[1].name} is damaged"):
        parts.gather([tmp_path / "parts"], tmp_path / "stash", tmp_path / "out")
    assert not (tmp_path / "stash" / written[1].name).exists()  # a good copy carried later is taken


def test_parts_of_two_sets_mixed_up_are_refused_after_joining(wheels, tmp_path):
    first = parts.pack(wheels, tmp_path / "one", part_bytes=100_000)
    (wheels / "b-2.0-py3-none-any.whl").write_text("changed")
    second = parts.pack(wheels, tmp_path / "two", part_bytes=100_000)
    set_id = parts.parse_part(first[0]).set_id
    # the second set's last part renamed as the first set's: whole by its own digest, wrong in the set
    impostor = parts.parse_part(second[2])
    (tmp_path / "one" / first[2].name).unlink()
    second[2].rename(tmp_path / "one" / parts.part_name(set_id, 3, 3, impostor.digest))
    with pytest.raises(ValueError, match=f"set {set_id} do not match its checksum"):
        parts.gather([tmp_path / "one"], tmp_path / "stash", tmp_path / "out")
    assert not (tmp_path / "out" / f"set-{set_id}").exists()


def test_the_command_line_names_the_missing_parts(wheels, tmp_path, capsys):
    written = parts.pack(wheels, tmp_path / "parts", part_bytes=100_000)
    written[2].unlink()
    code = parts.main(
        [
            "gather",
            "--from",
            str(tmp_path / "parts"),
            "--stash",
            str(tmp_path / "s"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == parts.INCOMPLETE
    assert f"{written[2].name[:-9]}.*" in capsys.readouterr().err
    assert (
        parts.main(["gather", "--from", str(tmp_path / "none"), "--stash", str(tmp_path / "e"), "--out", "o"])
        == 2
    )


def test_parts_of_one_set_must_agree_on_their_count(tmp_path):
    digest = hashlib.sha256(b"x").hexdigest()[:8]
    for name in ("wheels.0123456789ab.1-of-2", "wheels.0123456789ab.2-of-3"):
        (tmp_path / f"{name}.{digest}").write_bytes(b"x")
    with pytest.raises(ValueError, match="disagree"):
        parts.newest_set(parts.stash_parts([tmp_path], tmp_path / "stash"))
