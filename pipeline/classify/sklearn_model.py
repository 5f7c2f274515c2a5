"""The scikit-learn scar classifier: mining, clearing or other, from object features.

Models are scikit-learn estimators saved with skops (never pickle) next to a JSON *card*
(``<model>.card.json``) that records classes, features, training data, metrics, versions and
the file's sha256. Loading checks the hash first, then refuses any type outside an explicit
trusted list, then checks that the classes and features are the ones the pipeline expects.
"""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import skops
import skops.io as sio
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

from ..errors import ModelIntegrityError
from ..estimators import EstimatorError, decide, is_safe_type, make_estimator, trusted_types
from ..files import sha256_of, write_atomic, write_json_atomic
from ..model import CLASSES
from ..features import FEATURES
from .banks import advancing_banks, river_sand
from .base import register_classifier
TRUSTED_TYPES = [
    # Exactly what new_estimator / calibrated_estimator build: a random forest, optionally
    # wrapped in temperature (or, in older models, sigmoid) calibration.
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._TemperatureScaling",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.float64",
    "numpy.int64",
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "builtins.str",
    "builtins.int",
    "builtins.float",
    "builtins.bool",
    "builtins.NoneType",
    "numpy.random._mt19937.MT19937",
    "numpy.random.mtrand.RandomState",
]


@dataclass(frozen=True)
class ScarModel:
    """A loaded classifier and its card."""

    estimator: RandomForestClassifier | CalibratedClassifierCV
    card: dict
    path: Path

    @property
    def version(self) -> str:
        """Short model version for alerts: file name and the first 12 hex of its sha256."""
        return f"{self.path.stem}@{self.card['sha256'][:12]}"

    def predict(self, features: pd.DataFrame, thresholds: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Class and its probability for each row of a feature table (columns FEATURES).

        ``thresholds``: per-class decision thresholds (``classify.thresholds`` in the config,
        :func:`pipeline.estimators.decide`); without them the most probable class.

        Advancing banks (:func:`advancing_banks`) and river sand (:func:`river_sand`: ``mining``
        by the river with no water of its own) are ``other``; their probability is the model's
        probability of ``other`` (0 if it has no such class), so a low value shows an analyst
        that the river rule, not the model, decided.
        """
        if features.empty:
            return np.array([], dtype=object), np.array([], dtype=float)
        x = features[list(self.card["features"])].to_numpy(dtype=float)
        proba = self.estimator.predict_proba(np.nan_to_num(x))
        classes, probability = decide(proba, self.estimator.classes_, thresholds)
        rivers = advancing_banks(features) | river_sand(features, classes)
        if rivers.any():
            known = [str(c) for c in self.estimator.classes_]
            classes[rivers] = "other"
            probability[rivers] = proba[rivers, known.index("other")] if "other" in known else 0.0
        return classes, probability


def new_estimator(seed: int = 0, choice: str | None = None, params: dict | None = None):
    """The untrained classifier every training starts from: the random forest, or any
    scikit-learn classifier named by ``choice`` (:func:`pipeline.estimators.make_estimator`)."""
    if choice is not None:
        return make_estimator(choice, params, seed)
    return RandomForestClassifier(
        n_estimators=200, min_samples_leaf=2, class_weight="balanced", random_state=seed, n_jobs=1
    )


CALIBRATION_FOLDS = 3


def calibrated_estimator(seed: int = 0, choice: str | None = None, params: dict | None = None) -> CalibratedClassifierCV:
    """The forest with temperature-scaling calibration over CALIBRATION_FOLDS folds.

    A random forest's vote shares are not probabilities (they crowd away from 0 and 1);
    calibration makes ``probability`` mean what an analyst reads: of alerts given 0.8, about
    8 in 10 are that class. Temperature scaling fits one parameter on the multiclass
    log-probabilities, so it never changes which class wins; one-vs-rest sigmoid (Platt)
    calibration, used before, moved near-ties between ``mining`` and ``other`` (on scenes of the
    project's own generator it turned 6 of 29 mining scars to ``other`` that the forest itself
    called mining). Needs at least CALIBRATION_FOLDS samples of every class.
    """
    return CalibratedClassifierCV(new_estimator(seed, choice, params), method="temperature", cv=CALIBRATION_FOLDS)


def card_path(model_path: Path) -> Path:
    """The card that belongs to a model file."""
    return Path(model_path).with_suffix(".card.json")


def save_model(estimator: RandomForestClassifier | CalibratedClassifierCV, path: Path, card_fields: dict) -> dict:
    """Save ``estimator`` with skops and write its card; both atomically. Returns the card."""
    path = Path(path)
    write_atomic(path, lambda tmp: sio.dump(estimator, tmp, compression=zipfile.ZIP_DEFLATED, compresslevel=9))
    try:
        trusted = trusted_types(types_in(path))
    except EstimatorError as err:
        path.unlink()
        raise ModelIntegrityError(f"{path}: not saved: {err}") from None
    card = {
        "model_file": path.name,
        "sha256": sha256_of(path),
        "format": "skops",
        "estimator": type(estimator).__name__ + (
            f"({type(estimator.estimator).__name__}, method={estimator.method})"
            if isinstance(estimator, CalibratedClassifierCV) else ""),
        "classes": [str(c) for c in estimator.classes_],
        "features": list(FEATURES),
        "trusted_types": trusted,
        "sklearn_version": sklearn.__version__,
        "skops_version": skops.__version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **card_fields,
    }
    write_json_atomic(card_path(path), card)
    return card


def types_in(path: Path) -> set[str]:
    """Every ``module.Class`` a skops file would construct, read from its schema.

    skops trusts much of scikit-learn by default; the pipeline trusts only TRUSTED_TYPES.
    """
    with zipfile.ZipFile(path) as archive:
        schema = json.loads(archive.read("schema.json"))
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__module__" in node and "__class__" in node:
                found.add(f"{node['__module__']}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _forests(estimator) -> list:
    if isinstance(estimator, CalibratedClassifierCV):
        return [getattr(c, "estimator", None) for c in getattr(estimator, "calibrated_classifiers_", [])]
    return [estimator]


def check_tree(tree, n_features: int, n_classes: int) -> str | None:
    """What is wrong with one fitted ``sklearn.tree._tree.Tree``, or None.

    Prediction walks the node arrays in C without bounds checks: a child index out of range
    reads arbitrary memory (a crash), a child that points back loops for ever, a feature index
    out of range reads past the sample. So: leaves have both children -1; inner nodes have
    both children after themselves and inside the array; features in range; finite thresholds;
    values of shape (nodes, 1, classes), finite and not negative.
    """
    if int(getattr(tree, "n_features", -1)) != n_features or int(getattr(tree, "n_outputs", -1)) != 1:
        return f"made for {getattr(tree, 'n_features', '?')} features and {getattr(tree, 'n_outputs', '?')} outputs"
    if [int(c) for c in np.atleast_1d(getattr(tree, "n_classes", []))] != [n_classes]:
        return f"has classes {getattr(tree, 'n_classes', '?')}, not {n_classes}"
    state = tree.__getstate__()
    nodes, values, n = state.get("nodes"), state.get("values"), int(state.get("node_count", -1))
    if not isinstance(nodes, np.ndarray) or nodes.shape != (n,) or n < 1:
        return "node array does not match node_count"
    left = nodes["left_child"].astype(np.int64)
    right = nodes["right_child"].astype(np.int64)
    index = np.arange(n)
    leaf = left == -1
    inner = ~leaf
    bad_leaf = leaf & (right != -1)
    bad_inner = inner & ((left <= index) | (left >= n) | (right <= index) | (right >= n))
    if bad_leaf.any() or bad_inner.any():
        return f"child indices out of range at node {int(np.flatnonzero(bad_leaf | bad_inner)[0])}"
    feature = nodes["feature"].astype(np.int64)
    if ((feature[inner] < 0) | (feature[inner] >= n_features)).any():
        return f"feature index out of range (0..{n_features - 1})"
    if not np.isfinite(nodes["threshold"][inner]).all():
        return "non-finite threshold"
    if not isinstance(values, np.ndarray) or values.shape != (n, 1, n_classes):
        return f"values of shape {getattr(values, 'shape', '?')}, not {(n, 1, n_classes)}"
    if not np.isfinite(values).all() or (values < 0).any():
        return "non-finite or negative values"
    return None


def _tree_members(member) -> list | None:
    """The fitted trees of a tree classifier (a forest or a single tree); None for other kinds."""
    if isinstance(member, (DecisionTreeClassifier, ExtraTreeClassifier)):
        return [member]
    if isinstance(member, (RandomForestClassifier, ExtraTreesClassifier)):
        return list(getattr(member, "estimators_", None) or [])
    return None


def check_estimator(estimator, path: Path) -> None:
    """Refuse, before any prediction, a model whose arrays could crash, loop or return nonsense.

    Tree classifiers get every tree checked (:func:`check_tree`): prediction walks their node
    arrays in C without bounds checks, and the trusted-types check cannot see inside arrays.
    Any other scikit-learn classifier (``cec train --estimator``) must expect the pipeline's
    features and hold only finite fitted numbers.
    """
    n_features = len(FEATURES)
    members = _forests(estimator)
    if not members or any(m is None for m in members):
        raise ModelIntegrityError(f"{path}: the calibrated model holds no fitted estimator")
    for f, member in enumerate(members):
        if int(getattr(member, "n_features_in_", -1)) != n_features:
            raise ModelIntegrityError(f"{path}: estimator {f} expects {getattr(member, 'n_features_in_', '?')} "
                                      f"features, the pipeline gives {n_features}")
        trees = _tree_members(member)
        if trees is None:
            fitted = {name: value for name, value in vars(member).items()
                      if name.endswith("_") and isinstance(value, np.ndarray) and value.dtype.kind == "f"}
            bad = sorted(name for name, value in fitted.items() if not np.isfinite(value).all())
            if bad:
                raise ModelIntegrityError(f"{path}: estimator {f} has non-finite fitted values in {bad}; "
                                          "the model was tampered with or damaged, refusing to predict with it")
            continue
        if not trees:
            raise ModelIntegrityError(f"{path}: forest {f} is not a fitted forest")
        n_classes = len(member.classes_)
        for t, tree in enumerate(trees):
            problem = check_tree(getattr(tree, "tree_", None), n_features, n_classes) \
                if hasattr(getattr(tree, "tree_", None), "__getstate__") else "has no fitted tree"
            if problem:
                raise ModelIntegrityError(f"{path}: forest {f}, tree {t} {problem}; the model was tampered "
                                          "with or damaged, refusing to predict with it")
    for c, calibrated in enumerate(getattr(estimator, "calibrated_classifiers_", [])):
        for calibrator in getattr(calibrated, "calibrators", []):
            # sigmoid (a_, b_), isotonic (X_thresholds_, y_thresholds_) or temperature (beta_): finite numbers
            numbers = [np.asarray(getattr(calibrator, name), dtype=float).ravel()
                       for name in ("a_", "b_", "X_thresholds_", "y_thresholds_", "beta_") if hasattr(calibrator, name)]
            if not all(np.isfinite(n).all() for n in numbers):
                raise ModelIntegrityError(f"{path}: calibration {c} has non-finite parameters")


def load_model(path: Path) -> ScarModel:
    """Load a model after checking its card; raise ModelIntegrityError naming the problem."""
    path = Path(path)
    card_file = card_path(path)
    if not path.is_file():
        raise ModelIntegrityError(f"{path}: model file not found (train one with `cec train`)")
    if not card_file.is_file():
        raise ModelIntegrityError(f"{card_file}: model card not found; refusing to load {path.name}")
    try:
        card = json.loads(card_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelIntegrityError(f"{card_file}: model card is not valid JSON: {err}") from None
    except RecursionError:
        raise ModelIntegrityError(f"{card_file}: model card is nested too deeply to be a model card") from None
    if not isinstance(card, dict):
        raise ModelIntegrityError(f"{card_file}: model card is not a JSON object")
    actual = sha256_of(path)
    if actual != card.get("sha256"):
        raise ModelIntegrityError(
            f"{path}: sha256 {actual[:12]}… does not match its card ({str(card.get('sha256'))[:12]}…); "
            "the file was changed or corrupted"
        )
    try:
        stored = types_in(path)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelIntegrityError(f"{path}: not a readable skops model: {err}") from None
    except RecursionError:
        raise ModelIntegrityError(f"{path}: its schema is nested too deeply to be a skops model") from None
    # the card's list follows the estimator saved (any scikit-learn classifier), bounded by
    # is_safe_type so that a card can never vouch for a dangerous type
    following = {t for t in card.get("trusted_types", []) if isinstance(t, str) and is_safe_type(t)}
    unexpected = sorted(stored - set(TRUSTED_TYPES) - following)
    if unexpected:
        raise ModelIntegrityError(f"{path}: refusing to load types outside the trusted list: {unexpected}")
    try:
        estimator = sio.load(path, trusted=sorted(stored))
    except Exception as err:  # noqa: BLE001 - skops/sklearn raise many types for a damaged file
        raise ModelIntegrityError(f"{path}: the model cannot be loaded ({type(err).__name__}: {err})") from None
    check_estimator(estimator, path)
    if list(card.get("features", [])) != list(FEATURES):
        raise ModelIntegrityError(f"{path}: features {card.get('features')} differ from the pipeline's {list(FEATURES)}")
    classes = [str(c) for c in estimator.classes_]
    if classes != card.get("classes") or not set(classes) <= set(CLASSES):
        raise ModelIntegrityError(f"{path}: classes {classes} do not match the card or {list(CLASSES)}")
    return ScarModel(estimator=estimator, card=card, path=path)


register_classifier(".skops", load_model)
