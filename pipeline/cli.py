"""The ``cec`` command line (typer). Exit codes: 0 done, 1 unexpected error, 2 bad config or
input (the message names the file and the problem), 3 done but some inputs were skipped."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
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
        console.print(f"[bold red]error:[/] {err}", markup=True, highlight=False)
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
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run the batch job: search, load, detect, classify and write alerts."""
    from .run import run as run_job

    _setup_logging(verbose)
    try:
        path = config if config is not None else _demo_config()
        cfg = load_config(path, {"output.dir": out, "dask.scheduler": scheduler, "dask.n_workers": workers})
        with dask_client(cfg.dask):
            result = run_job(cfg, RichReporter())
    except Exception as err:  # noqa: BLE001 - mapped to exit codes
        _fail(err)
    _print_table(cfg, result)
    raise typer.Exit(result.exit_code)


@app.command()
def train(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Config naming the imagery (with --labels)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Reference polygons with a 'class' field."),
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
                reference = training.read_labels(labels_path)
                tables.append(training.training_table(cfg, reference, scene, RichReporter()))
                data.append({"scene": scene, "config": str(cfg_path), "labels": str(labels_path)})
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
    alerts: Path = typer.Option(..., "--alerts", help="alerts.geojson of a run."),
    reference: Path = typer.Option(..., "--reference", help="Reference polygons with a 'class' field."),
    min_area_ha: float = typer.Option(0.0, "--min-area-ha", help="Ignore reference scars smaller than this."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the scores as JSON."),
) -> None:
    """Object precision, recall and F1 per class, and the confusion matrix."""
    from .aoi import read_layer, utm_epsg
    from .evaluate import score_objects
    from .files import write_json_atomic

    _setup_logging(False)
    try:
        ref = read_layer(reference, "reference")
        found = read_layer(alerts, "alerts") if alerts.stat().st_size > 60 else None
        centre = ref.to_crs(4326).union_all().centroid
        epsg = utm_epsg(centre.x, centre.y)
        ref = ref.to_crs(epsg)
        if "below_mmu" in ref.columns:
            ref = ref[~ref["below_mmu"].astype(bool)]
        ref = ref[ref.area / 1e4 >= min_area_ha]
        import geopandas as gpd

        found = found.to_crs(epsg) if found is not None else gpd.GeoDataFrame({"class": []}, geometry=[], crs=epsg)
        scores = score_objects(found, ref.reset_index(drop=True))
    except FileNotFoundError as err:
        _fail(ConfigError(f"{err.filename}: file not found"))
    except Exception as err:  # noqa: BLE001
        _fail(err)
    out = Console()
    out.print(f"objects: {scores.n_reference} reference, {scores.n_alerts} alerts")
    out.print(f"recall {scores.recall:.3f}  precision {scores.precision:.3f}  class accuracy {scores.class_accuracy:.3f}")
    out.print(scores.per_class.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    out.print(scores.confusion.to_string())
    if json_out:
        write_json_atomic(json_out, scores.as_dict())


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


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
