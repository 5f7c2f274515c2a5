"""The ``cec`` command line (typer), one module per verb. Exit codes: 0 done, 1 unexpected
error, 2 bad config or input (the message names the file and the problem), 3 done but some
inputs were skipped, 4 the output folder is locked by another run."""

# each module adds its verb; imported in the order `cec --help` lists them
from . import run, train, evaluate, sample, demo, validate, review  # noqa: F401, I001
from .common import DEFAULT_MODEL, DEMO_CONFIG, DEMO_DATA, RichReporter, app, dask_client

__all__ = ["DEFAULT_MODEL", "DEMO_CONFIG", "DEMO_DATA", "RichReporter", "app", "dask_client", "main"]


def main() -> None:  # pragma: no cover - console entry point alias
    app()
