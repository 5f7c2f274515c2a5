"""Analyst verdicts: the one reader of the verdict CSV that ``cec review`` and ``cec train`` take.

The CSV (UTF-8; the header holds these five columns, an optional ``class``; others are ignored):

============  ===============  ======================================================
column        value required   meaning
============  ===============  ======================================================
alert_id      yes              an alert of this output folder
verdict       yes              ``confirmed`` or ``rejected``
reason        when rejected    why: one of ``REASON_CODES`` (e.g. ``river``, ``cloud``)
reviewer      no               who decided
comment       no               free text
============  ===============  ======================================================

A rejected alert leaves the cumulative alert files at once and is never issued again: its scar
keeps matching the stored alert in later runs, which stays rejected. The same CSV can be given
to ``cec train`` as labels (a confirmed alert keeps its class; a rejected one is a false alarm).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from ..errors import InputError

VERDICTS = ("confirmed", "rejected")
REASON_CODES = ("mining", "clearing", "river", "sandbar", "cloud", "shadow", "haze", "agriculture",
                "old_scar", "natural", "road", "other")
VERDICT_CSV_COLUMNS = ("alert_id", "verdict", "reason", "reviewer", "comment")
"""Columns every verdict CSV holds (``class`` is optional: the class of a confirmed alert)."""


MAX_LISTED = 20
"""Problems listed in one message; the rest are counted (a 200,000-row CSV must not give a 5 MB line)."""


def listed(problems: list[str]) -> str:
    """At most MAX_LISTED problems, one per line, and how many more there are."""
    shown = problems[:MAX_LISTED]
    more = [f"… and {len(problems) - MAX_LISTED} more ({len(problems)} in all)"] if len(problems) > MAX_LISTED else []
    return "\n  " + "\n  ".join([*shown, *more])


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (row number, fields) of a CSV; row 1 is the header, blank lines are skipped."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            records = list(csv.reader(handle))
    except (FileNotFoundError, IsADirectoryError):
        raise InputError(f"{path}: file not found") from None
    except (csv.Error, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable CSV: {err}") from None
    numbered = [(i, row) for i, row in enumerate(records, start=1) if any(cell.strip() for cell in row)]
    if not numbered:
        raise InputError(f"{path}: empty file (the header must be: {', '.join(VERDICT_CSV_COLUMNS)})")
    (_, header), rows = numbered[0], numbered[1:]
    return header, rows


def read_verdicts(path: Path) -> pd.DataFrame:
    """Read and check a verdict CSV; :class:`InputError` names the row and column at fault.

    The index of the table is the CSV row number (row 1 is the header), for later messages.

    Every row must have as many fields as the header (an unquoted comma in a comment would
    shift the others); an alert may appear on several rows only with the same verdict.
    """
    path = Path(path)
    header, rows = _read_rows(path)
    columns = [c.strip().lower() for c in header]
    missing = [c for c in VERDICT_CSV_COLUMNS if c not in columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} "
                         f"(the header must be: {', '.join(VERDICT_CSV_COLUMNS)})")
    ragged = [f"row {i}: {len(row)} fields, the header has {len(header)} (a comma inside a comment or reason "
              "must be within double quotes)" for i, row in rows if len(row) != len(header)]
    if ragged:
        raise InputError(f"{path}: rows that do not match the header:" + listed(ragged))
    table = pd.DataFrame([[cell.strip() for cell in row] for _, row in rows], columns=columns, dtype=object)
    if table.empty:
        table = pd.DataFrame(columns=columns, dtype=object)
    table = table.loc[:, ~pd.Index(columns).duplicated()]
    table["row"] = [i for i, _ in rows]
    table["verdict"] = table["verdict"].str.lower()
    table["reason"] = table["reason"].str.lower()
    problems = []
    for row in table.itertuples(index=False):
        i = row.row
        if not row.alert_id:
            problems.append(f"row {i}: alert_id is empty")
        if row.verdict not in VERDICTS:
            problems.append(f"row {i} ({row.alert_id}): verdict {row.verdict!r} is not one of {', '.join(VERDICTS)}")
        if row.verdict == "rejected" and not row.reason:
            problems.append(f"row {i} ({row.alert_id}): a rejected alert needs a reason ({', '.join(REASON_CODES)})")
        if row.reason and row.reason not in REASON_CODES:
            problems.append(f"row {i} ({row.alert_id}): reason {row.reason!r} is not one of {', '.join(REASON_CODES)}")
    for alert_id, group in table[table["alert_id"] != ""].groupby("alert_id", sort=False):
        if group["verdict"].nunique() > 1:
            says = ", ".join(f"row {r} {v}" for r, v in zip(group["row"], group["verdict"]))
            problems.append(f"alert {alert_id}: conflicting verdicts ({says}); keep one row per alert")
    if problems:
        raise InputError(f"{path}:" + listed(problems))
    # the same verdict given twice: the last row wins (its reviewer, reason and comment)
    table = table.drop_duplicates("alert_id", keep="last").set_index("row")
    return table[[*VERDICT_CSV_COLUMNS, *(["class"] if "class" in table.columns else [])]]
