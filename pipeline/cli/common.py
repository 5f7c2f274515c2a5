"""What every ``cec`` verb shares: the typer app (``--version``, shell completion), console,
logging (``-q``/``-v`` on every verb; plain unwrapped lines when not on a terminal), dask client
(its dashboard link logged), error exits, and where the demo config, data and default model are
(a clone or the installed package: :mod:`pipeline.bundled`)."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import typer
import yaml
from distributed import Client, LocalCluster, as_completed
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import __version__, bundled
from ..config import DaskConfig, local_workers, worker_processes
from ..errors import ConfigError, PipelineError
from ..logs import is_terminal, output_console
from ..logs import setup_logging as configure_logging
from ..progress import Reporter
from ..testing import scene

app = typer.Typer(add_completion=True, no_args_is_help=False, help="Forest-loss and mining alerts for protected areas.")
console = output_console(stderr=True)
log = logging.getLogger("pipeline")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = bundled.demo_config()
DEMO_DATA = bundled.demo_data()
"""Committed demo sources (a clone's ``data/demo`` or the package's copy)."""
DEFAULT_MODEL = bundled.bundled_model()
"""The bundled classifier: what a config without ``model:`` uses; ``cec train`` never overwrites it by default."""
ENDMEMBERS = bundled.bundle_root() / "data" / "endmembers" / "spectra.csv"
"""Real endmember spectra the training sampler mixes (data/README.md)."""

QUIET = typer.Option(False, "--quiet", "-q", help="Only warnings and errors.")
VERBOSE = typer.Option(False, "--verbose", "-v", help="Debug messages too.")


def _version(value: bool) -> None:
    if value:
        print(f"cec-pipeline {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Forest-loss and mining alerts for protected areas."""


class RichReporter(Reporter):
    """Stage timings in the log and a progress bar over dask tasks."""

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        with console.status(f"{name} …"):
            yield
        log.info("%s: %.1f s", name, time.perf_counter() - start)

    def track(self, futures: list, description: str) -> None:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(description, total=len(futures))
            for _ in as_completed(futures):
                bar.advance(task)


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """INFO log lines (DEBUG with ``verbose``, warnings only with ``quiet``) on stderr: Rich on a
    terminal, plain unwrapped lines without control codes otherwise (:mod:`pipeline.logs`)."""
    configure_logging(-1 if quiet else 1 if verbose else 0, sys.stderr)


@contextlib.contextmanager
def dask_client(config: DaskConfig, n_areas: int = 1) -> Iterator[object]:
    """A dask.distributed client: the configured scheduler, or a LocalCluster on this machine
    (worker threads or processes: :func:`pipeline.config.worker_processes` for ``n_areas``)."""
    if config.scheduler:
        try:
            client = Client(config.scheduler, timeout=f"{config.connect_timeout_s}s")
        except (OSError, TimeoutError) as err:
            raise ConfigError(f"dask.scheduler {config.scheduler}: cannot connect: {err}") from None
        with client:
            log.info("dask scheduler %s; dashboard: %s", config.scheduler, client.dashboard_link)
            yield client
        return
    workers = local_workers(config)
    processes = worker_processes(config, n_areas)
    # the dashboard on loopback, on a free port; only when bokeh is installed
    dashboard = "127.0.0.1:0" if importlib.util.find_spec("bokeh") else None
    with LocalCluster(
        n_workers=workers, threads_per_worker=config.threads_per_worker, processes=processes,
        dashboard_address=dashboard, silence_logs=logging.WARNING,
    ) as cluster, Client(cluster) as client:
        log.info("dask LocalCluster: %d workers × %d threads (%s); dashboard: %s", workers, config.threads_per_worker,
                 "processes" if processes else "in this process",
                 client.dashboard_link if dashboard else "off (install bokeh)")
        yield client


def fail(err: Exception) -> None:
    if isinstance(err, PipelineError):
        # soft_wrap: a batch log or a grep must see the message on whole lines
        # escape: file names, ids and API text are user text, never rich markup ('a[/x].yaml')
        console.print(f"[bold red]error:[/] {escape(str(err))}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(err.exit_code)
    log.exception("unexpected error")
    raise typer.Exit(1)


def demo_config() -> Path:
    """Make sure the demo scene exists (generated on first use, then cached) and return its config.

    From a clone: ``configs/demo.yaml`` as it is. From an installed package (read-only): a copy
    in the user cache whose scene is the cached one and whose output folder is ``out/demo``
    under the current directory.
    """
    if not DEMO_CONFIG.is_file():
        raise ConfigError(f"{DEMO_CONFIG}: the demo config is missing; reinstall cec-pipeline")
    folder = bundled.generated_dir() / "demo"
    with RichReporter().stage("demo scene (generated on first use, then cached)"):
        catalog = scene.ensure_scene(scene.DEMO_SPEC, folder, DEMO_DATA)
    if not bundled.is_installed():
        return DEMO_CONFIG
    raw = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    base = DEMO_CONFIG.parent
    raw["areas"] = {**raw["areas"], "path": str((base / raw["areas"]["path"]).resolve()),
                    "buffer_zones": str((base / raw["areas"]["buffer_zones"]).resolve())}
    raw["source"] = {**raw["source"], "stac_catalog": str(catalog)}
    raw["model"] = str(DEFAULT_MODEL)
    raw["output"] = {**raw["output"], "dir": str(Path.cwd() / "out" / "demo")}
    path = bundled.cache_dir() / "demo.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path
