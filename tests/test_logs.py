"""Batch-friendly output: one plain line per record off a terminal, warnings through logging."""

from __future__ import annotations

import io
import logging
import warnings

from pipeline.logs import final_message, output_console, setup_logging, strip_control


def test_plain_unwrapped_lines_without_control_codes_when_not_a_terminal():
    stream = io.StringIO()
    setup_logging(0, stream)
    long = "x" * 300
    logging.getLogger("pipeline.test").info("area \x1b[31mRN09\x1b[0m: %s\nsecond line", long)
    logging.getLogger("pipeline.test").debug("hidden at INFO")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1  # not wrapped, one record one line
    assert "\x1b" not in lines[0] and "RN09" in lines[0] and long in lines[0] and "| second line" in lines[0]
    assert " INFO pipeline.test: " in lines[0]


def test_quiet_and_verbose_levels():
    stream = io.StringIO()
    setup_logging(-1, stream)
    logging.getLogger("pipeline").info("info hidden")
    logging.getLogger("pipeline").warning("warning shown")
    assert "info hidden" not in stream.getvalue() and "warning shown" in stream.getvalue()
    stream = io.StringIO()
    setup_logging(1, stream)
    logging.getLogger("pipeline").debug("debug shown")
    assert "debug shown" in stream.getvalue()


def test_python_warnings_go_through_logging():
    stream = io.StringIO()
    with warnings.catch_warnings():
        setup_logging(0, stream)  # inside: pytest's own warning capture is undone on exit
        warnings.simplefilter("always")
        warnings.warn("Sending large graph of size 12 MiB", UserWarning, stacklevel=1)
    assert "WARNING py.warnings:" in stream.getvalue() and "Sending large graph" in stream.getvalue()
    logging.captureWarnings(False)


def test_tables_are_not_wrapped_off_a_terminal():
    from rich.table import Table

    stream = io.StringIO()
    table = Table("protected area", "hectares")
    table.add_row("Reserva Nacional Tambopata " * 6, "12.5")
    output_console(stream).print(table)
    text = stream.getvalue()
    assert "\x1b" not in text
    assert any(("Reserva Nacional Tambopata " * 6).strip() in line for line in text.splitlines())


def test_final_message_lists_counts_and_files(tmp_path):
    text = final_message(tmp_path, [tmp_path / "alerts.geojson", tmp_path / "evidence/a/ficha.html"],
                         {"new": 2, "ongoing": 5, "expanding": 1})
    assert text.splitlines()[0] == "alerts: 2 new, 5 ongoing, 1 expanding"
    assert "  alerts.geojson" in text and "  evidence/a/ficha.html" in text
    assert strip_control("a\x1b]8;;http://x\x07b\x07c") == "abc"
