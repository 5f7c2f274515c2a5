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

from pathlib import Path

import pandas as pd

from ..errors import InputError

VERDICTS = ("confirmed", "rejected")
REASON_CODES = ("mining", "clearing", "river", "sandbar", "cloud", "shadow", "haze", "agriculture",
                "old_scar", "natural", "road", "other")
VERDICT_CSV_COLUMNS = ("alert_id", "verdict", "reason", "reviewer", "comment")
"""Columns every verdict CSV holds (``class`` is optional: the class of a confirmed alert)."""


def read_verdicts(path: Path) -> pd.DataFrame:
    """Read and check a verdict CSV; :class:`InputError` names the row and column at fault."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable CSV: {err}") from None
    table.columns = [c.strip().lower() for c in table.columns]
    missing = [c for c in VERDICT_CSV_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} "
                         f"(the header must be: {', '.join(VERDICT_CSV_COLUMNS)})")
    table = table.map(lambda v: v.strip() if isinstance(v, str) else v)
    table["verdict"] = table["verdict"].str.lower()
    table["reason"] = table["reason"].str.lower()
    problems = []
    for i, row in enumerate(table.itertuples(index=False), start=2):  # row 1 is the header
        if not row.alert_id:
            problems.append(f"row {i}: alert_id is empty")
        if row.verdict not in VERDICTS:
            problems.append(f"row {i} ({row.alert_id}): verdict {row.verdict!r} is not one of {', '.join(VERDICTS)}")
        if row.verdict == "rejected" and not row.reason:
            problems.append(f"row {i} ({row.alert_id}): a rejected alert needs a reason ({', '.join(REASON_CODES)})")
        if row.reason and row.reason not in REASON_CODES:
            problems.append(f"row {i} ({row.alert_id}): reason {row.reason!r} is not one of {', '.join(REASON_CODES)}")
    if problems:
        raise InputError(f"{path}:\n  " + "\n  ".join(problems))
    return table[[*VERDICT_CSV_COLUMNS, *(["class"] if "class" in table.columns else [])]]
