"""``cec sample``: a stratified random sample of a run's map for analysts to label."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError
from ..files import write_atomic
from ..outputs.tables import neutralise
from ..training.evaluate import sample_run
from .common import QUIET, VERBOSE, app, console, fail, setup_logging


@app.command("sample")
def sample_command(
    run_dir: Path = typer.Option(..., "--run", help="Output folder of a run (alerts.geojson and run.json)."),
    out: Path = typer.Option(..., "--out", help="Sample CSV to write (lon, lat, stratum, stratum_area_ha, empty reference)."),
    n: int = typer.Option(50, "--n", min=2, help="Points per stratum (alert classes and no_change)."),
    n_no_change: Optional[int] = typer.Option(None, "--n-no-change", help="Points in the no_change stratum (default --n)."),
    seed: int = typer.Option(0, "--seed"),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Draw a stratified random sample from a run's map for analysts to label; score it with
    `cec evaluate --sample`."""
    setup_logging(verbose, quiet)
    try:
        table = sample_run(run_dir, n, n_no_change, seed)
        write_atomic(out, lambda tmp: neutralise(table).to_csv(tmp, index=False))
    except FileNotFoundError as err:
        fail(ConfigError(f"{err.filename}: file not found"))
    except Exception as err:  # noqa: BLE001
        fail(err)
    console.print(f"wrote {len(table)} sample points to {out}; fill 'reference' "
                  "(mining, clearing, other, no_change) and run `cec evaluate --sample`", markup=False)
