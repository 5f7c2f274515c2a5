"""Models load only when their card checks out."""

import json

import numpy as np
import pandas as pd
import pytest

from pipeline.classify import card_path, load_model, new_estimator, save_model
from pipeline.errors import ModelIntegrityError
from pipeline.scars import FEATURES


@pytest.fixture()
def model_file(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((40, len(FEATURES)))
    y = np.where(x[:, 0] > 0.5, "mining", "clearing")
    path = tmp_path / "m.skops"
    save_model(new_estimator().fit(x, y), path, {"training_data": ["unit test"]})
    return path


def test_round_trip_predicts(model_file):
    model = load_model(model_file)
    table = pd.DataFrame(np.array([[0.9] + [0.5] * (len(FEATURES) - 1), [0.1] + [0.5] * (len(FEATURES) - 1)]),
                         columns=list(FEATURES))
    classes, proba = model.predict(table)
    assert list(classes) == ["mining", "clearing"]
    assert ((proba > 0.5) & (proba <= 1)).all()
    card = json.loads(card_path(model_file).read_text())
    assert card["classes"] == ["clearing", "mining"] and card["features"] == list(FEATURES)
    assert model.version.startswith("m@")


def test_tampered_model_is_refused(model_file):
    data = bytearray(model_file.read_bytes())
    data[-10] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_model(model_file)


def test_missing_card_is_refused(model_file):
    card_path(model_file).unlink()
    with pytest.raises(ModelIntegrityError, match="card not found"):
        load_model(model_file)


def test_untrusted_types_are_refused(tmp_path):
    import skops.io as sio
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from pipeline.files import sha256_of

    rng = np.random.default_rng(1)
    x, y = rng.random((20, len(FEATURES))), np.array(["mining", "clearing"] * 10)
    path = tmp_path / "p.skops"
    sio.dump(make_pipeline(StandardScaler(), new_estimator()).fit(x, y), path)
    card_path(path).write_text(json.dumps({"sha256": sha256_of(path), "features": list(FEATURES),
                                           "classes": ["clearing", "mining"]}))
    with pytest.raises(ModelIntegrityError, match="trusted"):
        load_model(path)
