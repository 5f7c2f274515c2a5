"""Logging for people at a terminal and for batch schedulers (cron, Airflow, Slurm logs).

On a terminal: Rich log lines and tables. Anywhere else (a file, a pipe, a journal): one plain
line per record, never wrapped, with no colour or other control codes, ``time level logger:
message``; newlines inside a message become `` | `` so a record stays one line for grep.

Python warnings (dask's and distributed's included) are routed through logging
(``logging.captureWarnings``), so they reach the same stream in the same format.

Verbosity: ``-q`` shows warnings and errors only, the default INFO, ``-v`` DEBUG.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from pathlib import Path

CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|[\x00-\x08\x0b-\x1f\x7f]")
"""ANSI escape sequences (CSI, OSC) and C0 control characters other than tab and newline."""
NOISY = ("distributed", "dask", "rasterio", "fiona", "pyogrio", "urllib3", "botocore", "asyncio", "bokeh",
         "tornado")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def strip_control(text: str) -> str:
    """``text`` without terminal control codes; newlines become `` | ``."""
    return CONTROL.sub("", str(text)).replace("\r\n", "\n").replace("\n", " | ")


class PlainFormatter(logging.Formatter):
    """One line per record, no control codes (for logs that are not a terminal)."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return strip_control(super().format(record))


def is_terminal(stream) -> bool:
    """True when ``stream`` is an interactive terminal."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False


def level_for(verbosity: int) -> int:
    """``-1`` (quiet) -> WARNING, ``0`` -> INFO, ``1`` or more (verbose) -> DEBUG."""
    return logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO


def setup_logging(verbosity: int = 0, stream=None) -> logging.Handler:
    """Configure the root logger once per command; returns the handler it installed."""
    stream = stream if stream is not None else sys.stderr
    if is_terminal(stream):
        from rich.console import Console
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=Console(file=stream), show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(PlainFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    level = level_for(verbosity)
    root.setLevel(level)
    logging.captureWarnings(False)  # re-hook even if something replaced showwarning since
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.WARNING)
    for name in NOISY:  # libraries speak up at WARNING (and at DEBUG with -v -v), in our format
        library = logging.getLogger(name)
        for own in list(library.handlers):  # distributed installs its own stderr handler
            library.removeHandler(own)
        library.propagate = True
        library.setLevel(logging.DEBUG if verbosity > 1 else max(level, logging.WARNING))
    if verbosity <= 1:  # the dashboard's server chatter ("Host wildcard '*'…") is not a warning for users
        logging.getLogger("bokeh").setLevel(logging.ERROR)
    return handler


def output_console(stream=None, stderr: bool = False):
    """A Rich console for tables and final messages: plain, unwrapped text when not a terminal.

    Without ``stream`` it writes to whatever ``sys.stdout`` (``sys.stderr`` with ``stderr``) is
    at print time, so test runners that swap the streams capture it.
    """
    from rich.console import Console

    target = stream if stream is not None else (sys.stderr if stderr else sys.stdout)
    bound = {"file": stream} if stream is not None else {"stderr": stderr}
    if is_terminal(target):
        return Console(**bound)
    return Console(**bound, force_terminal=False, no_color=True, color_system=None, width=100_000,
                   soft_wrap=True, emoji=False, highlight=False)


def final_message(out: Path, files: Iterable[Path], counts: dict[str, int], lang: str = "en") -> str:
    """The last lines of a run: the new / ongoing / expanding counts and every file written."""
    out = Path(out)
    rel = []
    for path in sorted({Path(p) for p in files}):
        try:
            rel.append(str(path.relative_to(out)))
        except ValueError:
            rel.append(str(path))
    head = (f"alerts: {counts.get('new', 0)} new, {counts.get('ongoing', 0)} ongoing, "
            f"{counts.get('expanding', 0)} expanding")
    return "\n".join([head, f"files written in {out}:", *(f"  {p}" for p in rel)])
