"""What every ``cec`` verb shares: the typer app, console, logging, dask client, error exits,
and where the repository keeps the demo config, data and default model."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import typer
from distributed import Client, LocalCluster, as_completed
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..config import DaskConfig
from ..errors import ConfigError, PipelineError
from ..progress import Reporter
from ..testing import scene

app = typer.Typer(add_completion=False, no_args_is_help=False, help="Forest-loss and mining alerts for protected areas.")
console = Console(stderr=True)
log = logging.getLogger("pipeline")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO_ROOT / "configs" / "demo.yaml"
DEMO_DATA = REPO_ROOT / "data" / "demo"
"""Committed demo sources; ``generated/`` beside them holds generated scenes."""
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
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(description, total=len(futures))
            for _ in as_completed(futures):
                bar.advance(task)


def setup_logging(verbose: bool) -> None:
    """Rich log lines at INFO (DEBUG with ``verbose``); noisy libraries at ERROR."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, markup=False)],
        force=True,
    )
    for noisy in ("distributed", "rasterio", "fiona", "pyogrio", "asyncio", "urllib3", "tornado", "bokeh"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


@contextlib.contextmanager
def dask_client(config: DaskConfig) -> Iterator[object]:
    """A dask.distributed client: the configured scheduler, or a LocalCluster on this machine."""
    if config.scheduler:
        try:
            client = Client(config.scheduler, timeout=f"{config.connect_timeout_s}s")
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


def fail(err: Exception) -> None:
    if isinstance(err, PipelineError):
        # soft_wrap: a batch log or a grep must see the message on whole lines
        console.print(f"[bold red]error:[/] {err}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(err.exit_code)
    log.exception("unexpected error")
    raise typer.Exit(1)


def demo_config() -> Path:
    """Make sure the demo scene exists (generated on first use, then cached) and return its config."""
    if not DEMO_CONFIG.is_file():
        raise ConfigError(f"{DEMO_CONFIG}: the demo config is missing; run from a clone of the repository")
    with RichReporter().stage("demo scene (generated on first use, then cached)"):
        scene.ensure_scene(scene.DEMO_SPEC, DEMO_DATA / "generated" / "demo", DEMO_DATA)
    return DEMO_CONFIG
