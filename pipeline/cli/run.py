"""``cec run``: the batch job (or its plan with ``--dry-run``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from ..batch import planned_outputs, run_batch
from ..config import RunConfig, load_config, local_workers
from ..logs import final_message, output_console
from .common import QUIET, VERBOSE, RichReporter, app, console, dask_client, demo_config, fail, setup_logging


def _print_table(config: RunConfig, result) -> None:
    alerts = result.alerts
    table = Table(title=f"{config.name}: {len(alerts)} alerts, monitor {config.periods.monitor[0]}..{config.periods.monitor[1]}")
    for column in ("protected area", "zone", "class", "alerts", "hectares"):
        table.add_column(column, justify="right" if column in ("alerts", "hectares") else "left")
    if len(alerts):
        grouped = alerts.groupby(["protected_area_name", "zone", "class"])["area_ha"].agg(["count", "sum"])
        for (area, zone, cls), row in grouped.iterrows():
            # Text: an area name is user text, never markup
            table.add_row(Text(str(area)), Text(str(zone)), Text(str(cls)), str(int(row["count"])), f"{row['sum']:.1f}")
    out = output_console()
    out.print(table)
    counts = result.counts
    written = [Path(p) for k, p in result.outputs.items() if k != "evidence"]
    evidence = Path(config.output.dir) / "evidence"
    if "evidence" in result.outputs and evidence.is_dir():
        written += sorted(p for p in evidence.glob("*/*") if p.is_file())
    out.print(final_message(Path(config.output.dir), written, counts), soft_wrap=True, markup=False, highlight=False)
    failed = [n for n in result.notifications if not n.get("ok")]
    if failed:
        console.print(f"{len(failed)} notification(s) failed (the run is complete; see run.json)", soft_wrap=True,
                      markup=False)
    if result.skipped:
        console.print(f"{len(result.skipped)} inputs skipped (see run.json)", soft_wrap=True, markup=False)


@app.command()
def run(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Run config (YAML); default: the bundled demo."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (overrides output.dir)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="tcp://host:port of a running dask scheduler."),
    workers: Optional[int] = typer.Option(None, "--workers", help="LocalCluster workers (overrides dask.n_workers)."),
    since: Optional[datetime] = typer.Option(
        None, "--since", formats=["%Y-%m-%d"],
        help="First day of the monitor window (default: the last processed date minus lifecycle.lookback_days)."),
    until: Optional[datetime] = typer.Option(
        None, "--until", formats=["%Y-%m-%d"], help="Last day of the monitor window (default: periods.monitor end, or today)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List areas × items × outputs; read no pixels, write nothing."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo the window even if all its items were processed."),
    lang: Optional[str] = typer.Option(None, "--lang", help="es or en: language of the fichas and the report (output.lang)."),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Run the batch job: search, load, detect, classify and write alerts.

    Incremental: with no --since/--until, the window starts where the last run on this output
    folder ended; a window whose items were all processed before is skipped (exit 0).
    """
    setup_logging(verbose, quiet)
    try:
        path = config if config is not None else demo_config()
        cfg = load_config(path, {"output.dir": out, "dask.scheduler": scheduler, "dask.n_workers": workers,
                                 "output.lang": lang})
        options = {"since": since.date() if since else None, "until": until.date() if until else None,
                   "dry_run": dry_run, "overwrite": overwrite}
        # The cluster starts only once pixels are to be read (not for a dry run or "nothing new").
        result = run_batch(cfg, RichReporter(), cluster=lambda n_areas: dask_client(cfg.dask, n_areas), **options)
    except Exception as err:  # noqa: BLE001 - mapped to exit codes
        fail(err)
    if result.status == "dry run":
        _print_plan(cfg, result)
    elif result.status == "nothing new":
        console.print(f"nothing new in {result.window.start}..{result.window.end}: every item was processed "
                      f"before; outputs in {cfg.output.dir} left as they were (--overwrite redoes the window)", markup=False)
    else:
        _print_table(cfg, result)
    raise typer.Exit(result.exit_code)


def _print_plan(config: RunConfig, result) -> None:
    w = result.window
    out = output_console()
    out.print(f"dry run: monitor window {w.start}..{w.end} (looks loaded from {w.load_start}; "
              f"{'incremental' if w.incremental else 'from the config or flags'})", markup=False)
    for area in result.plan:
        new = [i for i in area["monitor_items"] if i["new"]]
        out.print(f"area {area['area_id']}: {len(area['baseline_items'])} baseline items, "
                  f"{len(area['monitor_items'])} monitor items in the window, {len(new)} new", markup=False)
        b = area["budget"]
        out.print(f"  grid {b['grid_shape'][0]} × {b['grid_shape'][1]} px ({b['megapixels']:.1f} Mpx, "
                  f"EPSG:{b['epsg']}), {b['looks']} looks, {b['chunks']} chunks of at most {b['chunk_px']}² px; "
                  f"memory ≈ {b['chunk_mib']:.0f} MiB per chunk task, {b['worker_mib']:.0f} MiB per worker, "
                  f"{b['client_mib']:.0f} MiB in this process", markup=False, highlight=False, soft_wrap=True)
        for item in area["monitor_items"]:
            out.print(f"  {item['date']}  {item['id']}  {'new' if item['new'] else 'processed'}", markup=False)
    where = (f"on {config.dask.scheduler}" if config.dask.scheduler else
             f"on a LocalCluster of {local_workers(config.dask)} workers × {config.dask.threads_per_worker} threads")
    out.print(f"areas run side by side {where}; no cluster was started for this plan", markup=False,
              highlight=False, soft_wrap=True)
    out.print(f"outputs in {config.output.dir}: {', '.join(planned_outputs(config))}", markup=False)
