"""Progress hooks of a run: the command line passes a rich :class:`Reporter`, the API this quiet one."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

from distributed import wait

log = logging.getLogger(__name__)


class Reporter:
    """Stage timings in the log; ``track`` waits for dask futures (a rich reporter shows a bar)."""

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        log.info("%s …", name)
        yield
        log.info("%s done in %.1f s", name, time.perf_counter() - start)

    def track(self, futures: list, description: str) -> None:
        """Wait for dask futures."""
        wait(futures)
