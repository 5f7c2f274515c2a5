"""Atomic file writing: outputs appear whole or not at all.

Every writer builds its file under a temporary name in the destination folder and renames it
into place (``os.replace`` is atomic on one filesystem), so a run killed mid-write leaves the
previous output intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import InputError, OutputError


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the result to ``path``; clean up on failure.

    Inside :func:`staged_outputs` the rename waits for the end of the block. An ``OSError``
    (a full disk, a read-only folder) becomes :class:`OutputError` naming ``path``.
    """
    path = Path(path)
    staged = False
    tmp = None
    try:
        _make_parents(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
        os.close(fd)
        os.unlink(tmp)  # some writers (GDAL) refuse to overwrite; let them create the file
        write(Path(tmp))
        if _staging is not None:
            _staging.add(path, Path(tmp))
            staged = True
        else:
            os.replace(tmp, path)
    except OSError as err:
        raise OutputError(f"{path}: cannot write: {err.strerror or err}") from None
    finally:
        if tmp is not None and not staged and os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(path: Path, obj: object) -> Path:
    """Write JSON (indented, UTF-8, non-ASCII kept) atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file (of its staged content when it was just written, see :func:`current_path`)."""
    digest = hashlib.sha256()
    with open(current_path(path), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


TEST_PAUSE_ENV = "CEC_TEST_PAUSE_BEFORE_RENAME"
"""Test hook: seconds to sleep after an output is written under its temporary name and before
the rename, so that a test can kill a run mid-write. Unset in normal use."""


def pause_for_tests() -> None:
    """Sleep if the test hook asks for it (see ``TEST_PAUSE_ENV``)."""
    seconds = os.environ.get(TEST_PAUSE_ENV)
    if seconds:
        print(f"cec: paused before rename ({TEST_PAUSE_ENV})", file=sys.stderr, flush=True)
        time.sleep(float(seconds))


def write_output(path: Path, write: Callable[[Path], None]) -> Path:
    """:func:`write_atomic` for run outputs: with the test pause between writing and renaming."""
    def write_then_pause(tmp: Path) -> None:
        write(tmp)
        pause_for_tests()

    return write_atomic(path, write_then_pause)


def write_output_text(path: Path, text: str) -> Path:
    """Write a UTF-8 run output atomically (with the test pause)."""
    return write_output(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


# --- safe names -----------------------------------------------------------------------------

SAFE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$"
"""Ids that may become one path component: ASCII letters, digits, ``_ . -``, starting with a
letter or digit (so never ``.``, ``..`` or a hidden name), at most 255 characters, no separator.
The alert-file schema gives ``alert_id`` the same pattern."""
SAFE_NAME = re.compile(SAFE_NAME_PATTERN)


def is_safe_name(name: object) -> bool:
    """Whether ``name`` may be used as one path component (see :data:`SAFE_NAME_PATTERN`)."""
    return isinstance(name, str) and SAFE_NAME.fullmatch(name) is not None


def child_path(folder: Path, name: str) -> Path:
    """``folder / name`` for an id, refusing any name that is not one safe path component."""
    if not is_safe_name(name):
        raise InputError(f"{name!r}: not a safe name for a file or folder in {folder} "
                         f"(letters, digits, '_', '.', '-'; starting with a letter or digit)")
    return Path(folder) / name


# --- staged writes: all outputs of a run, or none ---------------------------------------------


class _Staging:
    """Outputs written under temporary names, renamed into place together at the end."""

    def __init__(self) -> None:
        self.pending: dict[Path, Path] = {}  # final path -> temporary path, in writing order
        self.created_dirs: list[Path] = []
        self.lock = threading.Lock()

    def add(self, path: Path, tmp: Path) -> None:
        with self.lock:
            old = self.pending.pop(path, None)
            if old is not None and old.exists():
                old.unlink()
            self.pending[path] = tmp

    def commit(self) -> None:
        for path, tmp in list(self.pending.items()):
            os.replace(tmp, path)
            del self.pending[path]

    def discard(self) -> None:
        for tmp in self.pending.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        self.pending.clear()
        for folder in reversed(self.created_dirs):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if it stayed empty


_staging: _Staging | None = None


@contextlib.contextmanager
def staged_outputs() -> Iterator[None]:
    """Within this block :func:`write_atomic` writes temporaries only; they are renamed into
    place, in writing order, when the block ends without an error, and deleted when it fails.

    So a run that fails mid-way (a full disk, a bug) leaves every previous output as it was.
    """
    global _staging
    if _staging is not None:  # nested: the outer block commits
        yield
        return
    _staging = _Staging()
    try:
        yield
        _staging.commit()
    except BaseException:
        _staging.discard()
        raise
    finally:
        _staging = None


def current_path(path: Path) -> Path:
    """Where the latest content of ``path`` is: its staged temporary, if it was just written."""
    staging = _staging
    if staging is not None:
        return staging.pending.get(Path(path), Path(path))
    return Path(path)


def _make_parents(folder: Path) -> None:
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    if _staging is not None:
        _staging.created_dirs.extend(reversed(missing))
