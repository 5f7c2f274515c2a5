"""Run time and peak memory of the demo job, against an in-process baseline in the same run.

Usage::

    python benchmarks/bench_demo.py [--repeat 2] [--json out/bench_demo.json]

Each variant runs the whole job (`pipeline.run.run`) on the bundled demo scene (generated on
first use). Peak memory is the largest sum of resident memory over this process and its
children (dask workers), sampled every 50 ms. Ratios are against the first variant, the
single-threaded in-process scheduler, so they hold across machines; absolute seconds do not.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import dask
import psutil

from pipeline.testing import scene as demo
from pipeline.cli import DEMO_CONFIG, DEMO_DATA, dask_client
from pipeline.config import DaskConfig, load_config
from pipeline.run import run


class PeakMemory:
    """Largest resident set of this process plus its children while the block runs."""

    def __init__(self, interval_s: float = 0.05):
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_bytes = max(self.peak_bytes, total)
            time.sleep(self.interval_s)

    def __enter__(self) -> "PeakMemory":
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_variant(name: str, workers: int | None, out: Path) -> dict:
    config = load_config(DEMO_CONFIG, {"output.dir": str(out / name)})
    with PeakMemory() as memory:
        start = time.perf_counter()
        if workers is None:
            with dask.config.set(scheduler="synchronous"):
                result = run(config)
        else:
            with dask_client(DaskConfig(n_workers=workers)):
                result = run(config)
        seconds = time.perf_counter() - start
    return {"variant": name, "seconds": seconds, "peak_mib": memory.peak_bytes / 2**20, "alerts": len(result.alerts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs per variant; the fastest counts")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    demo.ensure_scene(demo.DEMO_SPEC, DEMO_DATA / "generated" / "demo", DEMO_DATA)
    variants = [("in-process, 1 thread (baseline)", None), ("LocalCluster, 1 worker", 1), ("LocalCluster, 2 workers", 2)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, workers in variants:
            runs = [run_variant(name, workers, Path(tmp)) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["seconds"])
            best["peak_mib"] = max(r["peak_mib"] for r in runs)
            rows.append(best)
    base = rows[0]
    print(f"{'variant':34s} {'seconds':>8s} {'x base':>7s} {'peak MiB':>9s} {'x base':>7s} {'alerts':>6s}")
    for row in rows:
        row["time_ratio"] = row["seconds"] / base["seconds"]
        row["memory_ratio"] = row["peak_mib"] / base["peak_mib"]
        print(f"{row['variant']:34s} {row['seconds']:8.1f} {row['time_ratio']:7.2f} {row['peak_mib']:9.0f} "
              f"{row['memory_ratio']:7.2f} {row['alerts']:6d}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
