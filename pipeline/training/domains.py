"""Cross-domain validation of the scar classifier.

In-domain figures (cross-validation within one family of training scenes) say little about new
imagery: a model can learn one generator. Here every figure trains on some domains and tests on
another one it never saw:

- ``held_out_seed``: a fresh sample drawn with another seed (the same sampler, new spectra draws,
  shapes and contexts);
- ``sensor``: leave one sensor out (train on Sentinel-2 only, test on Landsat; and the reverse);
- ``regime``: leave one observation regime out (single look, dense series, annual composite);
- ``library_half``: endmember spectra from one half of the real imagery only, tested on scenes
  built from the other half;
- any extra labelled sets passed in (e.g. ``demo_generator``: scars the pipeline detects in the
  project's own synthetic scenes, a different generator the sampler never trained on).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from ..features import FEATURES
from ..model import CLASSES
from .sampler import SpectralLibrary, sample_table


def scores(truth, predicted) -> dict:
    """Accuracy, per-class recall and sample count."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    out = {"accuracy": round(float((truth == predicted).mean()), 3) if truth.size else None, "n": int(truth.size)}
    for cls in CLASSES:
        sel = truth == cls
        if sel.any():
            out[f"recall_{cls}"] = round(float((predicted[sel] == cls).mean()), 3)
    return out


def _xy(table: pd.DataFrame):
    return np.nan_to_num(table[list(FEATURES)].to_numpy(dtype=float)), table["label"].to_numpy()


def fit_predict(make: Callable, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    x, y = _xy(train)
    return make().fit(x, y).predict(_xy(test)[0])


def cross_domain_report(make: Callable, train: pd.DataFrame, library_csv, n_test_per_class: int, seed: int,
                        extra: dict[str, pd.DataFrame] | None = None) -> dict:
    """Figures of models trained on part of the domains and tested on one they never saw.

    ``train`` is the sampler table the bundled model trains on (columns of
    :func:`pipeline.training.sampler.sample_table`); ``make`` builds an untrained estimator.
    """
    library = SpectralLibrary.from_csv(library_csv)
    test = sample_table(library, n_test_per_class, seed + 1000, family="held-out")
    report: dict = {"held_out_seed": {**scores(test["label"], fit_predict(make, train, test)),
                                      "train": f"sampler seed {seed}", "test": f"sampler seed {seed + 1000}"}}
    for column in ("sensor", "regime"):
        report[column] = {}
        for value in sorted(set(train[column])):
            part = test[test[column] == value]
            report[column][f"held_out={value}"] = scores(
                part["label"], fit_predict(make, train[train[column] != value], part))
    half_train = sample_table(SpectralLibrary.from_csv(library_csv, half="b"), max(n_test_per_class, len(train) // 6),
                              seed + 2000, family="half-b")
    half_test = sample_table(SpectralLibrary.from_csv(library_csv, half="a"), n_test_per_class, seed + 3000,
                             family="half-a")
    report["library_half"] = {"train=b,test=a": scores(half_test["label"], fit_predict(make, half_train, half_test))}
    for name, table in (extra or {}).items():
        if len(table):
            report[name] = scores(table["label"], fit_predict(make, train, table))
    return report
