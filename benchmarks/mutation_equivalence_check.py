#!/usr/bin/env python3
"""Randomised check that generated mutants of detect_block are equivalent (give the same output).

    .venv/bin/python benchmarks/mutation_equivalence_check.py MUTANT_ID [MUTANT_ID ...]

Each mutant (from ``mutation.py --generate``) is applied to a copy of pipeline/change.py in
memory and run on 40 random blocks (4 baseline looks, 5-11 in all, quantised to 1/64 so that
exact ties such as MNDWI 0 occur, 5 % NaN, 30 % cloudy, rows never seen clearly, 0-2 sensor
families) beside the original. A mutant that is not equivalent differs on some blocks (e.g.
``gen-change-hazy-mndwi_0-le``); 0 of 40 supports, not proves, equivalence: read the reason in
mutation.py's EQUIVALENT.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mutation as mt  # noqa: E402

import pipeline.change as orig  # noqa: E402

SOURCE = (mt.REPO / "pipeline" / "change.py").read_text(encoding="utf-8")
BASE_LOOK = dict(zip(orig.INPUTS, [0.8, 0.6, -0.4, -0.3, 0.03, 0.06, 0.03, 0.35, 0.15, 0.06]))


def load(mutant: mt.Mutant) -> types.ModuleType:
    if mutant.find not in SOURCE:
        raise SystemExit(f"{mutant.id} is not a mutant of pipeline/change.py")
    mod = types.ModuleType("pipeline._mutant")
    mod.__package__ = "pipeline"
    sys.modules[mod.__name__] = mod  # dataclasses look their module up
    exec(compile(SOURCE.replace(mutant.find, mutant.replace, 1), "mutant", "exec"), mod.__dict__)  # noqa: S102
    return mod


def random_block(rng: np.random.Generator, n_looks: int, size: int, n_families: int):
    changed = rng.random((n_looks, size, size)) < 0.5
    arrays = []
    for name in orig.INPUTS:
        a = BASE_LOOK[name] + rng.normal(0, 0.15, (n_looks, size, size))
        a = np.where(changed, a - (0.5 if name in ("ndvi", "nbr") else -0.1), a)
        a = np.round(a * 64) / 64  # multiples of 1/64: exact ties (MNDWI 0, drops at the threshold) occur
        a[rng.random(a.shape) < 0.05] = np.nan
        arrays.append(a.astype(np.float32))
    clear = rng.random((n_looks, size, size)) < 0.7
    clear[:, :2] = False  # never seen clearly
    clear[:4, 2:4] = False  # no clear baseline look, clear monitor looks
    families = None if n_families == 0 else rng.integers(0, n_families, n_looks).astype(np.int16)
    return arrays, clear, np.arange(n_looks) < 4, families


def main(ids: list[str]) -> int:
    mutants = {m.id: m for m in mt.generated_mutants(mt.REPO, {})}
    for mutant_id in ids:
        mod = load(mutants[mutant_id])
        rng = np.random.default_rng(0)
        differ = 0
        for _ in range(40):
            arrays, clear, is_baseline, families = random_block(rng, int(rng.integers(5, 12)), 24,
                                                                int(rng.integers(0, 3)))
            a = orig.detect_block(*arrays, clear, is_baseline, orig.ChangeParams(), look_family=families)
            b = mod.detect_block(*arrays, clear, is_baseline, mod.ChangeParams(), look_family=families)
            differ += not np.array_equal(a, b, equal_nan=True)
        print(f"{mutant_id}: {differ} of 40 random blocks differ")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
