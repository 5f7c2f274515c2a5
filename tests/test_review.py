"""The one verdict reader and the verdicts it writes into the state's alerts (no run needed)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipeline.errors import InputError
from pipeline.review import apply_verdicts
from pipeline.training.verdicts import read_verdicts


def csv(tmp_path, text: str):
    path = tmp_path / "verdicts.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_reader_normalises_case_and_space_and_keeps_the_optional_class(tmp_path):
    table = read_verdicts(csv(tmp_path, " Alert_ID ,Verdict,reason,reviewer,comment,class\n"
                                        "a1, CONFIRMED ,,ana,,clearing\na2,rejected, River ,ana,bank,\n"))
    assert table.to_dict("records") == [
        {"alert_id": "a1", "verdict": "confirmed", "reason": "", "reviewer": "ana", "comment": "", "class": "clearing"},
        {"alert_id": "a2", "verdict": "rejected", "reason": "river", "reviewer": "ana", "comment": "bank", "class": ""},
    ]


def test_reader_names_every_bad_row(tmp_path):
    path = csv(tmp_path, "alert_id,verdict,reason,reviewer,comment\n"
                         "a1,maybe,,ana,\na2,rejected,,ana,\n,confirmed,,ana,\na4,rejected,aliens,ana,\n")
    with pytest.raises(InputError) as err:
        read_verdicts(path)
    message = str(err.value)
    for expected in ("row 2 (a1): verdict 'maybe'", "row 3 (a2): a rejected alert needs a reason",
                     "row 4: alert_id is empty", "row 5 (a4): reason 'aliens'"):
        assert expected in message


def test_reader_names_missing_columns_and_missing_files(tmp_path):
    with pytest.raises(InputError, match="missing column.*reason, reviewer, comment"):
        read_verdicts(csv(tmp_path, "alert_id,verdict\na1,confirmed\n"))
    with pytest.raises(InputError, match="file not found"):
        read_verdicts(tmp_path / "nope.csv")


def test_verdicts_are_written_into_the_alerts_and_unknown_ids_refused(tmp_path):
    alerts = pd.DataFrame({"alert_id": ["a1", "a2"], "verdict": [None, None], "verdict_reason": [None, None],
                           "reviewer": [None, None], "review_comment": [None, None], "reviewed": [None, None]})
    verdicts = read_verdicts(csv(tmp_path, "alert_id,verdict,reason,reviewer,comment\na2,rejected,cloud,ana,edge\n"))
    updated = apply_verdicts(alerts, verdicts, tmp_path / "verdicts.csv", today=dt.date(2022, 3, 4))
    assert updated.loc[1].to_dict() == {"alert_id": "a2", "verdict": "rejected", "verdict_reason": "cloud",
                                        "reviewer": "ana", "review_comment": "edge", "reviewed": "2022-03-04"}
    assert updated.loc[0, "verdict"] is None and alerts.loc[1, "verdict"] is None  # a copy
    unknown = read_verdicts(csv(tmp_path, "alert_id,verdict,reason,reviewer,comment\na9,confirmed,,ana,\n"))
    with pytest.raises(InputError, match="row 2: a9"):
        apply_verdicts(alerts, unknown, tmp_path / "verdicts.csv")
