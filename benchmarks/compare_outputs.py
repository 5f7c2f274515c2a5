"""Compare two output folders of `cec run` file by file, ignoring run ids and timestamps.

    python benchmarks/compare_outputs.py BEFORE_DIR AFTER_DIR

Text files (GeoJSON, CSV, HTML, JSON, KML) are compared after replacing the run id and ISO
timestamps; run.json also drops its ``seconds`` and ``versions``; GeoPackages are compared
layer by layer as tables (``update_time``/``last_change`` and run ids masked); PNG chips byte
by byte. Manifests' sha256 of the ficha (which shows the run id) are masked. Prints one line
per difference and exits 1 when any file differs or is missing on one side.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from pathlib import Path

RUN_ID = re.compile(r"[A-Za-z0-9_.-]+-\d{8}T\d{6}Z")
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")


def normal_text(text: str) -> str:
    return STAMP.sub("<time>", RUN_ID.sub("<run_id>", text))


def run_json(path: Path) -> str:
    data = json.loads(path.read_text())
    for key in ("seconds", "versions", "started", "run_id", "outputs"):
        data.pop(key, None)
    data.get("config", {}).get("output", {}).pop("dir", None)
    return normal_text(json.dumps(data, sort_keys=True))


def manifest(path: Path) -> str:
    data = json.loads(path.read_text())
    data.pop("created", None)
    ficha = data.get("files", {}).get("ficha.html")
    if ficha:
        ficha["sha256"] = "<masked: the ficha shows the run id>"
        ficha.pop("bytes", None)
    return normal_text(json.dumps(data, sort_keys=True))


def gpkg(path: Path) -> str:
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        parts = []
        for table in tables:
            if table.startswith("rtree_") or table == "sqlite_sequence":
                continue
            rows = db.execute(f'SELECT * FROM "{table}"').fetchall()
            parts.append(f"{table}: {rows!r}")
    text = "\n".join(parts)
    text = re.sub(r"'\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z'", "'<time>'", text)
    return normal_text(text)


def normal(path: Path, root: Path) -> bytes | str:
    name = path.name
    if name == "run.json":
        return run_json(path)
    if name == "manifest.json":
        return manifest(path)
    if path.suffix == ".gpkg":
        return gpkg(path)
    if path.suffix in (".geojson", ".csv", ".html", ".json", ".kml"):
        return normal_text(path.read_text(encoding="utf-8").replace(str(root), "<out>"))
    return path.read_bytes()


def compare(before: Path, after: Path) -> list[str]:
    files_b = {p.relative_to(before) for p in before.rglob("*") if p.is_file() and not p.name.startswith(".")}
    files_a = {p.relative_to(after) for p in after.rglob("*") if p.is_file() and not p.name.startswith(".")}
    problems = [f"only in {before}: {p}" for p in sorted(files_b - files_a)]
    problems += [f"only in {after}: {p}" for p in sorted(files_a - files_b)]
    for rel in sorted(files_b & files_a):
        if normal(before / rel, before) != normal(after / rel, after):
            problems.append(f"differs: {rel}")
    return problems


def main() -> int:
    before, after = Path(sys.argv[1]), Path(sys.argv[2])
    problems = compare(before, after)
    n = sum(1 for p in before.rglob("*") if p.is_file() and not p.name.startswith("."))
    for line in problems:
        print(line)
    print(f"{n} files in {before}; {len(problems)} difference(s) after masking run ids and timestamps")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
