"""`cec validate` names each problem of an alert file; `cec review` records analysts' verdicts."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.state import load_state


@pytest.fixture()
def out(run_sequence, tmp_path):
    _, _, _, snapshots = run_sequence
    folder = tmp_path / "out"
    shutil.copytree(snapshots[2], folder)
    return folder


def test_validate_accepts_the_files_a_run_writes(out):
    for name in ("alerts.geojson", "alerts_new.geojson"):
        result = CliRunner().invoke(app, ["validate", str(out / name)])
        assert result.exit_code == 0, result.output
        assert "valid" in result.output


def test_validate_names_the_feature_id_and_property_of_each_problem(out, tmp_path):
    document = json.loads((out / "alerts.geojson").read_text())
    features = document["features"]
    assert len(features) >= 4
    features[1]["properties"]["class"] = "gold"
    del features[2]["properties"]["zone"]
    features[3]["properties"]["probability"] = 1.7
    features[0]["properties"]["first_detected"] = "2099-01-01"
    document["crs"] = {"type": "name", "properties": {"name": "EPSG:4326"}}
    broken = tmp_path / "broken.geojson"
    broken.write_text(json.dumps(document))
    result = CliRunner().invoke(app, ["validate", str(broken)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    ids = [f["id"] for f in features]

    def reported(index: int, prop: str) -> bool:
        return any(f"feature {index} (id {ids[index]}), property '{prop}'" in line for line in lines)

    assert reported(1, "class") and reported(2, "zone") and reported(3, "probability")
    assert reported(0, "first_detected")
    assert any("crs" in line for line in lines)


def test_validate_exits_2_on_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "alerts.geojson"
    path.write_text("{not json")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "not valid JSON" in " ".join(result.output.split())


def test_review_records_verdicts_and_drops_rejected_alerts_from_the_files(out):
    alerts = json.loads((out / "alerts.geojson").read_text())["features"]
    rejected, confirmed = alerts[0]["id"], alerts[1]["id"]
    verdicts = out.parent / "verdicts.csv"
    verdicts.write_text(
        "alert_id,verdict,reason,reviewer,comment\n"
        f"{rejected},rejected,river,ana.quispe,sandbar at low water\n"
        f"{confirmed},confirmed,mining,ana.quispe,dredge ponds seen in the field\n"
    )
    result = CliRunner().invoke(app, ["review", str(verdicts), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 confirmed, 1 rejected" in " ".join(result.output.split())
    state = load_state(out).alerts.set_index("alert_id")
    assert state.loc[rejected, "verdict"] == "rejected" and state.loc[rejected, "verdict_reason"] == "river"
    assert state.loc[confirmed, "verdict"] == "confirmed" and state.loc[confirmed, "reviewer"] == "ana.quispe"
    remaining = {f["id"] for f in json.loads((out / "alerts.geojson").read_text())["features"]}
    assert rejected not in remaining and confirmed in remaining
    import pandas as pd

    assert rejected not in set(pd.read_csv(out / "alerts.csv")["alert_id"])
    reviewed = {f["id"]: f["properties"] for f in json.loads((out / "alerts_reviewed.geojson").read_text())["features"]}
    assert set(reviewed) == {rejected, confirmed}
    assert reviewed[rejected]["verdict"] == "rejected" and reviewed[rejected]["verdict_reason"] == "river"


def test_cec_train_reads_the_review_csv_with_the_reviewed_alerts(out):
    """The verdict CSV and alerts_reviewed.geojson are labels for `cec train` (its reader)."""
    from pipeline.training.train import verdict_labels as training_labels

    alerts = json.loads((out / "alerts.geojson").read_text())["features"]
    verdicts = out.parent / "verdicts.csv"
    verdicts.write_text("alert_id,verdict,reason,reviewer,comment\n"
                        f"{alerts[0]['id']},rejected,river,ana,\n{alerts[1]['id']},confirmed,,ana,\n")
    assert CliRunner().invoke(app, ["review", str(verdicts), "--out", str(out)]).exit_code == 0
    labels = training_labels(verdicts, out / "alerts_reviewed.geojson")
    assert len(labels) == 2 and "other" in set(labels["class"])


def test_review_rejects_unknown_ids_and_bad_verdicts_naming_the_row(out):
    verdicts = out.parent / "bad.csv"
    verdicts.write_text("alert_id,verdict,reason,reviewer,comment\nnope-1,rejected,river,,\n")
    result = CliRunner().invoke(app, ["review", str(verdicts), "--out", str(out)])
    assert result.exit_code == 2 and "row 2: nope-1" in " ".join(result.output.split())
    verdicts.write_text("alert_id,verdict,reason,reviewer,comment\nx,maybe,,,\ny,rejected,,,\n")
    result = CliRunner().invoke(app, ["review", str(verdicts), "--out", str(out)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "row 2 (x): verdict 'maybe'" in text and "row 3 (y): a rejected alert needs a reason" in text
    verdicts.write_text("alert_id,verdict\nx,confirmed\n")
    result = CliRunner().invoke(app, ["review", str(verdicts), "--out", str(out)])
    assert result.exit_code == 2 and "missing column(s) reason, reviewer, comment" in " ".join(result.output.split())
