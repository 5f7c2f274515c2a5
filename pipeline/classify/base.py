"""What a scar classifier is (:class:`Classifier`) and the registry that loads one from a file.

A classifier implementation is one module in :mod:`pipeline.classify` that defines a loader
``load(path) -> Classifier`` (checking the file before trusting it) and registers it for its
file suffix with :func:`register_classifier`. ``model:`` in the config names the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ..errors import ModelIntegrityError


@runtime_checkable
class Classifier(Protocol):
    """A loaded, validated scar classifier."""

    card: dict
    """What the model is (classes, features, training data, versions), as its card holds it."""

    @property
    def version(self) -> str:
        """Short version stamped on every alert (``model_version``)."""

    def predict(self, scars: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Class (str) and its probability for each row of a scar table (:data:`pipeline.features.FEATURES`)."""


_LOADERS: dict[str, Callable[[Path], Classifier]] = {}


def register_classifier(suffix: str, load: Callable[[Path], Classifier]) -> None:
    """Register the loader of model files ending in ``suffix`` (e.g. ``.skops``)."""
    _LOADERS[suffix.lower()] = load


def unregister_classifier(suffix: str) -> None:
    """Remove a loader (tests that register a toy classifier clean up with this)."""
    _LOADERS.pop(suffix.lower(), None)


def load_classifier(path: Path) -> Classifier:
    """Load the model file with the loader registered for its suffix."""
    path = Path(path)
    load = _LOADERS.get(path.suffix.lower())
    if load is None:
        raise ModelIntegrityError(f"{path}: no classifier is registered for {path.suffix or 'files without a suffix'} "
                                  f"(known: {', '.join(sorted(_LOADERS))})")
    return load(path)
