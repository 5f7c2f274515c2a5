"""``cec evaluate``: object scores against reference polygons; area estimates from a labelled sample."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
import typer

from ..errors import ConfigError
from ..files import write_json_atomic
from ..training.evaluate import area_estimates, area_table, check_sample, score_alert_file
from ..logs import output_console
from .common import QUIET, VERBOSE, app, fail, setup_logging


@app.command()
def evaluate(
    alerts: Optional[Path] = typer.Option(None, "--alerts", help="alerts.geojson of a run (with --reference)."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="Reference polygons with a 'class' field."),
    sample: Optional[Path] = typer.Option(None, "--sample", help="A labelled stratified sample (CSV from `cec sample`, 'reference' filled in): area-adjusted accuracy and areas."),
    min_area_ha: float = typer.Option(0.0, "--min-area-ha", help="Ignore reference scars smaller than this."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the scores as JSON."),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Object precision, recall and F1 per class and the confusion matrix (--alerts with
    --reference); and/or Olofsson et al. (2014) area-adjusted accuracy and area estimates with
    95 % confidence intervals per protected area (--sample)."""
    setup_logging(verbose, quiet)
    if reference is None and sample is None:
        fail(ConfigError("give --alerts with --reference (object scores), --sample (area estimates), or both"))
    report: dict = {}
    out = output_console()
    try:
        if reference is not None:
            if alerts is None:
                raise ConfigError("--reference needs --alerts, the alerts.geojson to score")
            scores = score_alert_file(alerts, reference, min_area_ha)
            report["objects"] = scores.as_dict()
            out.print(f"objects: {scores.n_reference} reference, {scores.n_alerts} alerts", markup=False)
            out.print(f"recall {scores.recall:.3f}  precision {scores.precision:.3f}  class accuracy {scores.class_accuracy:.3f}", markup=False)
            out.print(scores.per_class.to_string(index=False, float_format=lambda v: f"{v:.3f}"), markup=False)
            out.print(scores.confusion.to_string(), markup=False)
        if sample is not None:
            if not sample.is_file():
                raise ConfigError(f"{sample}: file not found")
            labelled = check_sample(pd.read_csv(sample, dtype={"protected_area_id": str, "reference": str}), str(sample))
            estimates = area_estimates(labelled)
            report["area_estimates"] = estimates
            out.print("area-adjusted estimates (Olofsson et al. 2014), ± = 95 % confidence interval", markup=False)
            out.print(area_table(estimates).to_string(index=False, float_format=lambda v: f"{v:.3f}"), markup=False)
    except FileNotFoundError as err:
        fail(ConfigError(f"{err.filename}: file not found"))
    except Exception as err:  # noqa: BLE001
        fail(err)
    if json_out:
        write_json_atomic(json_out, report if sample is not None else report["objects"])
