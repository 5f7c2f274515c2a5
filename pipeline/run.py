"""The Python API: ``run(config)`` does the whole batch job; ``detect(config)`` only detects.

A thin front over :mod:`pipeline.batch` and :mod:`pipeline.detect`, kept so that scripts and
notebooks have one stable place to import from.
"""

from __future__ import annotations

from .batch import run_batch as run
from .detect import detect, detect_area
from .model import AreaDetection, RunResult
from .progress import Reporter

__all__ = ["AreaDetection", "Reporter", "RunResult", "detect", "detect_area", "run"]
