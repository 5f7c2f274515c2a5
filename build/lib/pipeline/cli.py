"""The ``cec`` command line (typer). Exit codes: 0 done, 1 unexpected error, 2 bad config or
input (the message names the file and the problem), 3 done but some inputs were skipped."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .config import DaskConfig, RunConfig, load_config
from .errors import ConfigError, PipelineError
from .run import Reporter

app = typer.Typer(add_completion=False, no_args_is_help=False, help="Forest-loss and mining alerts for protected areas.")
console = Console(stderr=True)
log = logging.getLogger("pipeline")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO_ROOT / "configs" / "demo.yaml"
DEFAULT_MODEL = REPO_ROOT / "models" / "scar-classifier.skops"


class RichReporter(Reporter):
    """Stage timings in the log and a progress bar over dask tasks."""

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        with console.status(f"{name} …"):
            yield
        log.info("%s: %.1f s", name, time.perf_counter() - start)

    def track(self, futures: list, description: str) -> None:
        from distributed import as_completed

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(description, total=len(futures))
            for _ in as_completed(futures):
                bar.advance(task)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, markup=False)],
        force=True,
    )
    import distributed  # noqa: F401 - importing it sets its own log levels, which we then lower

    for noisy in ("distributed", "rasterio", "fiona", "pyogrio", "asyncio", "urllib3", "tornado", "bokeh"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


@contextlib.contextmanager
def dask_client(config: DaskConfig) -> Iterator[object]:
    """A dask.distributed client: the configured scheduler, or a LocalCluster on this machine."""
    from distributed import Client, LocalCluster

    if config.scheduler:
        try:
            client = Client(config.scheduler, timeout="15s")
        except (OSError, TimeoutError) as err:
            raise ConfigError(f"dask.scheduler {config.scheduler}: cannot connect: {err}") from None
        with client:
            yield client
        return
    workers = config.n_workers or max(1, min(4, os.cpu_count() or 1))
    with LocalCluster(
        n_workers=workers, threads_per_worker=config.threads_per_worker, processes=True,
        dashboard_address=None, silence_logs=logging.ERROR,
    ) as cluster, Client(cluster) as client:
        log.info("dask LocalCluster: %d workers × %d threads", workers, config.threads_per_worker)
        yield client


def _fail(err: Exception) -> None:
    if isinstance(err, PipelineError):
        # soft_wrap: a batch log or a grep must see the message on whole lines
        console.print(f"[bold red]error:[/] {err}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(err.exit_code)
    log.exception("unexpected error")
    raise typer.Exit(1)


def _demo_config() -> Path:
    """Make sure the demo scene exists (generated on first use, then cached) and return its config."""
    from . import demo

    if not DEMO_CONFIG.is_file():
        raise ConfigError(f"{DEMO_CONFIG}: the demo config is missing; run from a clone of the repository")
    with RichReporter().stage("demo scene (generated on first use, then cached)"):
        demo.ensure_scene(demo.DEMO_SPEC, demo.demo_dir() / "generated" / "demo")
    return DEMO_CONFIG


def _print_table(config: RunConfig, result) -> None:
    alerts = result.alerts
    table = Table(title=f"{config.name}: {len(alerts)} alerts, monitor {config.periods.monitor[0]}..{config.periods.monitor[1]}")
    for column in ("protected area", "zone", "class", "alerts", "hectares"):
        table.add_column(column, justify="right" if column in ("alerts", "hectares") else "left")
    if len(alerts):
        grouped = alerts.groupby(["protected_area_name", "zone", "class"])["area_ha"].agg(["count", "sum"])
        for (area, zone, cls), row in grouped.iterrows():
            table.add_row(area, zone, cls, str(int(row["count"])), f"{row['sum']:.1f}")
    Console().print(table)
    console.print(f"outputs in {config.output.dir}" + (f"; {len(result.skipped)} inputs skipped (see run.json)" if result.skipped else ""))


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
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run the batch job: search, load, detect, classify and write alerts.

    Incremental: with no --since/--until, the window starts where the last run on this output
    folder ended; a window whose items were all processed before is skipped (exit 0).
    """
    from .run import run as run_job

    _setup_logging(verbose)
    try:
        path = config if config is not None else _demo_config()
        cfg = load_config(path, {"output.dir": out, "dask.scheduler": scheduler, "dask.n_workers": workers,
                                 "output.lang": lang})
        options = {"since": since.date() if since else None, "until": until.date() if until else None,
                   "dry_run": dry_run, "overwrite": overwrite}
        if dry_run:
            result = run_job(cfg, RichReporter(), **options)
        else:
            with dask_client(cfg.dask):
                result = run_job(cfg, RichReporter(), **options)
    except Exception as err:  # noqa: BLE001 - mapped to exit codes
        _fail(err)
    if result.status == "dry run":
        _print_plan(cfg, result)
    elif result.status == "nothing new":
        console.print(f"nothing new in {result.window.start}..{result.window.end}: every item was processed "
                      f"before; outputs in {cfg.output.dir} left as they were (--overwrite redoes the window)")
    else:
        _print_table(cfg, result)
    raise typer.Exit(result.exit_code)


def _print_plan(config: RunConfig, result) -> None:
    from .batch import planned_outputs

    w = result.window
    out = Console()
    out.print(f"dry run: monitor window {w.start}..{w.end} (looks loaded from {w.load_start}; "
              f"{'incremental' if w.incremental else 'from the config or flags'})")
    for area in result.plan:
        new = [i for i in area["monitor_items"] if i["new"]]
        out.print(f"area {area['area_id']}: {len(area['baseline_items'])} baseline items, "
                  f"{len(area['monitor_items'])} monitor items in the window, {len(new)} new")
        for item in area["monitor_items"]:
            out.print(f"  {item['date']}  {item['id']}  {'new' if item['new'] else 'processed'}")
    out.print(f"outputs in {config.output.dir}: {', '.join(planned_outputs(config))}")


@app.command()
def train(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Config naming the imagery (with --labels)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Reference polygons with a 'class' field, or an analyst verdict CSV (alert_id, verdict, reason, reviewer, comment[, class])."),
    alerts: Optional[Path] = typer.Option(None, "--alerts", help="With a verdict CSV: the alerts.geojson its alert_id values refer to."),
    out: Path = typer.Option(DEFAULT_MODEL, "--out", help="Model file to write (.skops; a .card.json goes beside it)."),
    scenes: int = typer.Option(4, "--scenes", help="Demo training scenes to generate (without --config)."),
    workers: Optional[int] = typer.Option(None, "--workers"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Train the scar classifier, on labelled imagery or (by default) on generated demo scenes.

    The default never trains on the demo scene itself: training scenes are other windows and
    seeds around La Pampa, so the demo remains an honest test.
    """
    from . import train as training

    _setup_logging(verbose)
    try:
        if (config is None) != (labels is None):
            raise ConfigError("give --config and --labels together, or neither (demo training)")
        pairs = [(config, labels, config.stem)] if config is not None else _demo_training_pairs(scenes)
        tables, data = [], []
        with dask_client(DaskConfig(n_workers=workers)):
            for cfg_path, labels_path, scene in pairs:
                cfg = load_config(cfg_path, {"model": str(out)})
                reference = training.read_labels(labels_path, alerts)
                tables.append(training.training_table(cfg, reference, scene, RichReporter()))
                data.append({"scene": scene, "config": str(cfg_path), "labels": str(labels_path)}
                            | ({"alerts": str(alerts)} if alerts is not None else {}))
        import pandas as pd

        result = training.fit(pd.concat(tables, ignore_index=True))
        card = training.save_trained(result, out, data)
    except Exception as err:  # noqa: BLE001
        _fail(err)
    console.print(f"saved {out} (sha256 {card['sha256'][:12]}…); samples {card['n_samples']}")
    cv = card["cv_metrics"]
    for name in card["classes"]:
        if name in cv:
            m = cv[name]
            console.print(f"  CV {name:9s} precision {m['precision']:.2f} recall {m['recall']:.2f} f1 {m['f1-score']:.2f}")


def _demo_training_pairs(n: int) -> list[tuple[Path, Path, str]]:
    """Generate ``n`` training scenes around the demo window and write a config for each."""
    import yaml

    from . import demo

    if not DEMO_CONFIG.is_file():
        raise ConfigError(f"{DEMO_CONFIG}: the demo config is missing; run from a clone of the repository")
    base = yaml.safe_load(DEMO_CONFIG.read_text())
    pairs = []
    for i, spec in enumerate(demo.training_specs(n)):
        folder = demo.demo_dir() / "generated" / f"train-{i}"
        with RichReporter().stage(f"training scene {i} (seed {spec.seed})"):
            catalog = demo.ensure_scene(spec, folder)
        raw = dict(base)
        raw["name"] = f"train-{i}"
        raw["areas"] = {**base["areas"], "path": str((DEMO_CONFIG.parent / base["areas"]["path"]).resolve()),
                        "buffer_zones": str((DEMO_CONFIG.parent / base["areas"]["buffer_zones"]).resolve())}
        raw["source"] = {**base["source"], "stac_catalog": str(catalog)}
        raw["output"] = {**base["output"], "dir": str(folder / "out")}
        raw["model"] = str(DEFAULT_MODEL)
        cfg_path = folder / "config.yaml"
        cfg_path.write_text(yaml.safe_dump(raw, sort_keys=False))
        pairs.append((cfg_path, folder / "truth.geojson", f"train-{i}"))
    return pairs


@app.command()
def evaluate(
    alerts: Optional[Path] = typer.Option(None, "--alerts", help="alerts.geojson of a run (with --reference)."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="Reference polygons with a 'class' field."),
    sample: Optional[Path] = typer.Option(None, "--sample", help="A labelled stratified sample (CSV from `cec sample`, 'reference' filled in): area-adjusted accuracy and areas."),
    min_area_ha: float = typer.Option(0.0, "--min-area-ha", help="Ignore reference scars smaller than this."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the scores as JSON."),
) -> None:
    """Object precision, recall and F1 per class and the confusion matrix (--alerts with
    --reference); and/or Olofsson et al. (2014) area-adjusted accuracy and area estimates with
    95 % confidence intervals per protected area (--sample)."""
    from .files import write_json_atomic

    _setup_logging(False)
    if reference is None and sample is None:
        _fail(ConfigError("give --alerts with --reference (object scores), --sample (area estimates), or both"))
    report: dict = {}
    out = Console()
    try:
        if reference is not None:
            if alerts is None:
                raise ConfigError("--reference needs --alerts, the alerts.geojson to score")
            scores = _object_scores(alerts, reference, min_area_ha)
            report["objects"] = scores.as_dict()
            out.print(f"objects: {scores.n_reference} reference, {scores.n_alerts} alerts")
            out.print(f"recall {scores.recall:.3f}  precision {scores.precision:.3f}  class accuracy {scores.class_accuracy:.3f}")
            out.print(scores.per_class.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
            out.print(scores.confusion.to_string())
        if sample is not None:
            import pandas as pd

            from .evaluate import area_estimates, area_table, check_sample

            if not sample.is_file():
                raise ConfigError(f"{sample}: file not found")
            labelled = check_sample(pd.read_csv(sample, dtype={"protected_area_id": str, "reference": str}), str(sample))
            estimates = area_estimates(labelled)
            report["area_estimates"] = estimates
            out.print("area-adjusted estimates (Olofsson et al. 2014), ± = 95 % confidence interval")
            out.print(area_table(estimates).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    except FileNotFoundError as err:
        _fail(ConfigError(f"{err.filename}: file not found"))
    except Exception as err:  # noqa: BLE001
        _fail(err)
    if json_out:
        write_json_atomic(json_out, report if sample is not None else report["objects"])


def _object_scores(alerts: Path, reference: Path, min_area_ha: float):
    """Object scores of an alerts file against reference polygons, in the reference's UTM zone."""
    import geopandas as gpd

    from .aoi import read_layer, utm_epsg
    from .evaluate import score_objects

    ref = read_layer(reference, "reference")
    found = read_layer(alerts, "alerts") if alerts.stat().st_size > 60 else None
    centre = ref.to_crs(4326).union_all().centroid
    epsg = utm_epsg(centre.x, centre.y)
    ref = ref.to_crs(epsg)
    if "below_mmu" in ref.columns:
        ref = ref[~ref["below_mmu"].astype(bool)]
    ref = ref[ref.area / 1e4 >= min_area_ha]
    found = found.to_crs(epsg) if found is not None else gpd.GeoDataFrame({"class": []}, geometry=[], crs=epsg)
    return score_objects(found, ref.reset_index(drop=True))


@app.command("sample")
def sample_command(
    run_dir: Path = typer.Option(..., "--run", help="Output folder of a run (alerts.geojson and run.json)."),
    out: Path = typer.Option(..., "--out", help="Sample CSV to write (lon, lat, stratum, stratum_area_ha, empty reference)."),
    n: int = typer.Option(50, "--n", min=2, help="Points per stratum (alert classes and no_change)."),
    n_no_change: Optional[int] = typer.Option(None, "--n-no-change", help="Points in the no_change stratum (default --n)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Draw a stratified random sample from a run's map for analysts to label; score it with
    `cec evaluate --sample`."""
    import json

    from .aoi import load_zones, read_layer
    from .config import RunConfig
    from .evaluate import draw_sample
    from .files import write_atomic

    _setup_logging(False)
    try:
        run_json = run_dir / "run.json"
        if not run_json.is_file():
            raise ConfigError(f"{run_json}: not found; --run must be the output folder of `cec run`")
        cfg = RunConfig.model_validate(json.loads(run_json.read_text())["config"])
        zones = load_zones(cfg.areas)
        alerts_path = run_dir / "alerts.geojson"
        alerts = read_layer(alerts_path, "alerts") if alerts_path.stat().st_size > 60 else None
        centre = zones.to_crs(4326).union_all().centroid
        from .aoi import utm_epsg

        epsg = utm_epsg(centre.x, centre.y)
        zones = zones.to_crs(epsg)
        if alerts is None:
            import geopandas as gpd

            alerts = gpd.GeoDataFrame({"class": [], "protected_area_id": []}, geometry=[], crs=epsg)
        alerts = alerts.to_crs(epsg)
        counts = {name: n for name in ("mining", "clearing", "other")} | {"no_change": n if n_no_change is None else n_no_change}
        points = draw_sample(alerts, zones, counts, seed)
        lonlat = points.to_crs(4326)
        table = points.drop(columns="geometry")
        table.insert(1, "lon", lonlat.geometry.x.round(6))
        table.insert(2, "lat", lonlat.geometry.y.round(6))
        write_atomic(out, lambda tmp: table.to_csv(tmp, index=False))
    except FileNotFoundError as err:
        _fail(ConfigError(f"{err.filename}: file not found"))
    except Exception as err:  # noqa: BLE001
        _fail(err)
    console.print(f"wrote {len(table)} sample points to {out}; fill 'reference' "
                  "(mining, clearing, other, no_change) and run `cec evaluate --sample`")


@app.command("demo")
def demo_command(
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the scene (default data/demo/generated/demo)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Another seed gives another cloud and clearing layout."),
) -> None:
    """Generate the synthetic La Pampa scene (a local STAC catalog and its truth)."""
    import dataclasses

    from . import demo

    _setup_logging(False)
    spec = demo.DEMO_SPEC if seed is None else dataclasses.replace(demo.DEMO_SPEC, seed=seed)
    folder = out or demo.demo_dir() / "generated" / "demo"
    catalog = demo.ensure_scene(spec, folder)
    console.print(f"catalog: {catalog}")


@app.command()
def validate(
    file: Path = typer.Argument(..., help="An alert file (alerts.geojson, alerts_new.geojson)."),
) -> None:
    """Check an alert file against the project's JSON Schema; exit 1 naming each problem.

    Exit 0 valid; 1 problems (each printed with the feature index, id and property); 2 the
    file is missing or not JSON.
    """
    from .validate import validate_file

    _setup_logging(False)
    try:
        problems = validate_file(file)
    except Exception as err:  # noqa: BLE001
        _fail(err)
    for problem in problems:
        print(f"{file}: {problem}")
    if problems:
        console.print(f"[bold red]{len(problems)} problem(s)[/] in {file}")
        raise typer.Exit(1)
    print(f"{file}: valid")


@app.command()
def review(
    csv_file: Path = typer.Argument(..., help="Verdict CSV: alert_id, verdict, reason, reviewer, comment."),
    out: Path = typer.Option(..., "--out", help="The output folder whose alerts were reviewed."),
) -> None:
    """Record analysts' verdicts (confirmed / rejected) in the output folder's state store.

    Rejected alerts leave the alert files at once and are never issued again as new.
    """
    from .review import review as record

    _setup_logging(False)
    try:
        counts = record(out, csv_file)
    except Exception as err:  # noqa: BLE001
        _fail(err)
    console.print(f"{counts['confirmed']} confirmed, {counts['rejected']} rejected; "
                  f"rewrote {', '.join(counts['rewritten']) or 'no alert file'} in {out}")


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
