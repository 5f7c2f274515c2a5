"""benchmarks/seed_spread.py fits the very model `cec train --seed` fits, and scores like the benchmarks."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from pipeline.features import FEATURES
from pipeline.training import train as training
from pipeline.training.sampler import SpectralLibrary, sample_table

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import seed_spread  # noqa: E402


def test_seed_model_is_the_model_cec_train_fits():
    table = sample_table(SpectralLibrary.from_csv(seed_spread.ENDMEMBERS), 12, 7)
    trained = training.fit(table, 7).estimator          # what `cec train --seed 7` saves
    spread = seed_spread.seed_model(table, 7)
    x = np.nan_to_num(table[list(FEATURES)].to_numpy(dtype=float))
    assert np.array_equal(trained.predict_proba(x), spread.estimator.predict_proba(x))
    other = seed_spread.seed_model(table, 8)
    assert not np.array_equal(other.estimator.predict_proba(x), spread.estimator.predict_proba(x))
