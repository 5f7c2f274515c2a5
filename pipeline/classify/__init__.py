"""Scar classifiers: the :class:`~.base.Classifier` protocol, the loader registry
(:func:`~.base.register_classifier`, :func:`~.base.load_classifier`), the scikit-learn
implementation (:mod:`.sklearn_model`) and the river-edge rules (:mod:`.banks`)."""

from .banks import advancing_banks, by_the_river, river_dynamics, river_sand
from .base import Classifier, load_classifier, register_classifier, unregister_classifier
from .sklearn_model import (
    CALIBRATION_FOLDS,
    TRUSTED_TYPES,
    ScarModel,
    calibrated_estimator,
    card_path,
    load_model,
    new_estimator,
    save_model,
)

__all__ = ["CALIBRATION_FOLDS", "TRUSTED_TYPES", "Classifier", "ScarModel", "advancing_banks", "by_the_river",
           "calibrated_estimator", "card_path", "load_classifier", "load_model", "new_estimator", "register_classifier",
           "river_dynamics", "river_sand", "save_model", "unregister_classifier"]
