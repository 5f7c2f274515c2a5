"""`pip install .` (not editable) gives a working `cec`: demo config, demo data and the model
ship inside the wheel; a config without `model:` uses the bundled model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project built as a wheel and installed (no deps: they are this venv's) into a folder."""
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "source"  # a clean copy: no build/ left over, no generated scenes or outputs
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "generated", "out", "__pycache__", ".pytest_cache"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(folder / "dist")], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    (wheel,) = (folder / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("pipeline/_bundled/configs/demo.yaml", "pipeline/_bundled/models/scar-classifier.skops",
                    "pipeline/_bundled/models/scar-classifier.card.json",
                    "pipeline/_bundled/data/demo/protected_areas.geojson",
                    "pipeline/_bundled/data/demo/sources/LC08_003069_20180906_clip.tif",
                    "pipeline/schemas/alerts.schema.json"):
        assert shipped in names
    target = folder / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    return target


def cec(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(target), "XDG_CACHE_HOME": str(cwd / "cache")}
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_installed_package_runs_the_demo_plan_with_its_bundled_files(installed, tmp_path):
    version = cec(installed, tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.startswith("cec-pipeline ")
    plan = cec(installed, tmp_path, "run", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "area RN09" in plan.stdout and str(tmp_path / "out" / "demo") in plan.stdout
    assert (tmp_path / "cache" / "cec-pipeline" / "generated" / "demo" / "catalog.json").is_file()
    probe = ("import pipeline, pipeline.bundled as b, pipeline.config as c; "
             "print(pipeline.__file__); print(b.is_installed()); print(c.RunConfig.model_fields['model'].default_factory())")
    where = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "PYTHONPATH": str(installed)},
                           capture_output=True, text=True, cwd=tmp_path, timeout=120)
    lines = where.stdout.splitlines()
    assert lines[0].startswith(str(installed)) and lines[1] == "True"
    assert lines[2] == str(installed / "pipeline" / "_bundled" / "models" / "scar-classifier.skops")
