"""``cec validate``: check an alert file against the JSON Schema."""

from __future__ import annotations

from rich.markup import escape

from pathlib import Path

import typer

from ..validate import validate_file
from .common import QUIET, VERBOSE, app, console, fail, setup_logging


@app.command()
def validate(
    file: Path = typer.Argument(..., help="An alert file (alerts.geojson, alerts_new.geojson)."),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Check an alert file against the project's JSON Schema; exit 1 naming each problem.

    Exit 0 valid; 1 problems (each printed with the feature index, id and property); 2 the
    file is missing or not JSON.
    """
    setup_logging(verbose, quiet)
    try:
        problems = validate_file(file)
    except Exception as err:  # noqa: BLE001
        fail(err)
    for problem in problems:
        print(f"{file}: {problem}")
    if problems:
        console.print(f"[bold red]{len(problems)} problem(s)[/] in {escape(str(file))}")
        raise typer.Exit(1)
    print(f"{file}: valid")
