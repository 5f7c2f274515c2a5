"""``cec review``: record analysts' verdicts in an output folder's state store."""

from __future__ import annotations

from pathlib import Path

import typer

from ..review import review as record
from .common import QUIET, VERBOSE, app, console, fail, setup_logging


@app.command()
def review(
    csv_file: Path = typer.Argument(..., help="Verdict CSV: alert_id, verdict, reason, reviewer, comment."),
    out: Path = typer.Option(..., "--out", help="The output folder whose alerts were reviewed."),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Record analysts' verdicts (confirmed / rejected) in the output folder's state store.

    Rejected alerts leave the alert files at once and are never issued again as new.
    """
    setup_logging(verbose, quiet)
    try:
        counts = record(out, csv_file)
    except Exception as err:  # noqa: BLE001
        fail(err)
    console.print(f"{counts['confirmed']} confirmed, {counts['rejected']} rejected; "
                  f"rewrote {', '.join(counts['rewritten']) or 'no alert file'} in {out}", markup=False)
