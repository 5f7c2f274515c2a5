"""Atomic writes: an output appears whole or not at all, also when its writer fails."""

from __future__ import annotations

import hashlib
import json

import pytest

from pipeline.files import sha256_of, write_atomic, write_json_atomic, write_output_text, write_text_atomic


class WriterFailed(Exception):
    pass


def test_a_failing_writer_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "alerts.geojson"
    path.write_text("previous run\n")

    def half_then_fail(tmp):
        tmp.write_text('{"type": "FeatureCollection", "features": [')  # half a file …
        raise WriterFailed("disk full")                                # … then the writer dies

    with pytest.raises(WriterFailed):
        write_atomic(path, half_then_fail)
    assert path.read_text() == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alerts.geojson"]


def test_a_writer_that_fails_before_writing_leaves_nothing(tmp_path):
    def fail(tmp):
        raise WriterFailed("model error")

    with pytest.raises(WriterFailed):
        write_atomic(tmp_path / "sub" / "report.html", fail)
    assert list((tmp_path / "sub").iterdir()) == []


def test_the_writer_gets_a_fresh_temporary_name_beside_the_target(tmp_path):
    seen = []

    def write(tmp):
        seen.append(tmp)
        assert not tmp.exists(), "GDAL writers refuse to overwrite: the name must be free"
        assert tmp.parent == tmp_path and tmp.name.startswith(".summary.") and ".tmp" in tmp.name
        tmp.write_text("a,b\n")

    assert write_atomic(tmp_path / "summary.csv", write) == tmp_path / "summary.csv"
    assert (tmp_path / "summary.csv").read_text() == "a,b\n" and not seen[0].exists()


def test_text_json_and_hash(tmp_path):
    write_text_atomic(tmp_path / "a.txt", "Área «RN09»\n")
    assert (tmp_path / "a.txt").read_bytes() == "Área «RN09»\n".encode("utf-8")
    write_json_atomic(tmp_path / "b.json", {"name": "Tambopata", "n": 1})
    assert json.loads((tmp_path / "b.json").read_text(encoding="utf-8")) == {"name": "Tambopata", "n": 1}
    assert sha256_of(tmp_path / "a.txt") == hashlib.sha256("Área «RN09»\n".encode()).hexdigest()


def test_run_outputs_pause_before_the_rename_only_when_the_test_hook_asks(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CEC_TEST_PAUSE_BEFORE_RENAME", "0")
    write_output_text(tmp_path / "x.txt", "x")
    assert "paused before rename" in capsys.readouterr().err
    monkeypatch.delenv("CEC_TEST_PAUSE_BEFORE_RENAME")
    write_output_text(tmp_path / "y.txt", "y")
    assert capsys.readouterr().err == "" and (tmp_path / "y.txt").read_text() == "y"
