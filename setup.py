"""Packages: ``pipeline*`` plus the bundled demo config, demo data, endmember spectra and model.

Those live where a clone expects them (``configs/``, ``data/demo/``, ``models/``) and ship in
the wheel as ``pipeline/_bundled/...`` package data (same tree), so ``pip install .`` (not
editable) gives a working ``cec run``; ``pipeline/bundled.py`` finds them either way.
Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

BUNDLED = {
    "pipeline._bundled.models": "models",
    "pipeline._bundled.configs": "configs",
    "pipeline._bundled.data.demo": "data/demo",
    "pipeline._bundled.data.endmembers": "data/endmembers",
}

setup(
    packages=[*find_packages(include=["pipeline", "pipeline.*"]), *BUNDLED],
    package_dir=BUNDLED,
)
