"""The ``cec`` command line (typer), one module per verb. Exit codes: 0 done, 1 unexpected
error, 2 bad config or input (the message names the file and the problem), 3 done but some
inputs were skipped, 4 the output folder is locked by another run."""

import sys

# each module adds its verb; imported in the order `cec --help` lists them
from . import run, train, evaluate, sample, demo, validate, review  # noqa: F401, I001
from .common import DEFAULT_MODEL, DEMO_CONFIG, DEMO_DATA, RichReporter, app, dask_client

__all__ = ["DEFAULT_MODEL", "DEMO_CONFIG", "DEMO_DATA", "RichReporter", "app", "dask_client", "main"]


def main() -> None:
    """The ``cec`` console command: the app, then an exit without interpreter teardown.

    When a command returns, its outputs are renamed into place and its state committed; what
    is left is finalising hundreds of modules (GDAL, numba, dask, scikit-learn, geopandas),
    which changes nothing and takes 0.5-1 s of every run. So the logs and the terminal are
    flushed and the process ends with the command's exit code (``os._exit``)."""
    import logging
    import os

    try:
        app()                       # always ends in SystemExit (click's standalone mode)
        code = 0
    except SystemExit as done:
        code = done.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): printed, exit 1
        print(code, file=sys.stderr)
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more to say
            pass
    os._exit(code)
