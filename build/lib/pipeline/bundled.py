"""Files that ship with the package: the demo config, the demo's source data and the model.

In a clone they live at the repository root (``configs/demo.yaml``, ``data/demo/``,
``models/scar-classifier.skops``); an installed wheel carries the same tree as package data
under ``pipeline/_bundled/`` (see ``setup.py``). :func:`bundle_root` finds whichever is there,
so ``pip install .`` (not editable) gives a working ``cec run``.

What the demo generates (its scene) goes where the user can write: ``data/demo/generated``
in a clone, else the user cache (``$XDG_CACHE_HOME/cec-pipeline``, default ``~/.cache``).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
INSTALLED = PACKAGE / "_bundled"
CLONE = PACKAGE.parent
MODEL_NAME = "scar-classifier.skops"


def bundle_root() -> Path:
    """The folder holding ``configs/``, ``data/demo/`` and ``models/``: the clone or the wheel's."""
    if (INSTALLED / "configs" / "demo.yaml").is_file():
        return INSTALLED
    return CLONE


def is_installed() -> bool:
    """True when running from an installed wheel (no clone around the package)."""
    return bundle_root() == INSTALLED


def bundled_model() -> Path:
    """The classifier shipped with the package (``model:`` absent from a config means this one)."""
    return bundle_root() / "models" / MODEL_NAME


def demo_config() -> Path:
    """The demo's run config."""
    return bundle_root() / "configs" / "demo.yaml"


def demo_data() -> Path:
    """The demo's source data (protected areas, buffer zones, reflectance samples)."""
    return bundle_root() / "data" / "demo"


def cache_dir() -> Path:
    """Where generated demo and training scenes go in an installed package."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cec-pipeline"


def generated_dir() -> Path:
    """Folder of generated scenes: ``data/demo/generated`` in a clone, the user cache otherwise."""
    return cache_dir() / "generated" if is_installed() else demo_data() / "generated"
