"""Where `cec run`'s detection time goes on a scale-benchmark scene, stage by stage.

Usage::

    python benchmarks/profile_scale.py /tmp/cec-bench-scale/scene_4000_9_v1 [--workers 2] [--chunk-px 2048]

Plans the scene's area as ``cec run`` does (:func:`pipeline.detect.start_area`) and times:

``one window, in this process``
    the first chunk's window task under ``cProfile``, split into reading (odc-stac, GDAL decode and
    resampling, DN to reflectance), the clear mask, the indices, the change test and the block
    reduction (candidates and context);
``windows``
    every window task on a LocalCluster (what ``cec run`` computes on the workers);
``scars``
    in this process: merge the chunks' candidates, label them, describe every scar (features).

One JSON line per stage and a summary are printed.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

PARTS = {  # cumulative time of these functions = the part
    "read": ("load_observations",),
    "mask": ("clear_mask",),
    "indices": ("compute_indices",),
    "change": ("detect_change",),
    "reduce": ("reduce_block",),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene", type=Path)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--chunk-px", type=int, default=None)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    sys.path.insert(0, str(HERE))
    import bench_scale

    from pipeline.aoi import load_zones
    from pipeline.change import CONFIDENCE_CODES
    from pipeline.config import load_config, local_workers
    from pipeline.detect import start_area
    from pipeline.plan import plan_areas
    from pipeline.progress import Reporter
    from pipeline.streaming import find_scars_sparse, merge_candidates

    out = Path("/tmp") / f"cec-profile-{args.scene.name}"
    out.parent.mkdir(parents=True, exist_ok=True)
    config = load_config(bench_scale.write_config(args.scene, out, chunk_px=args.chunk_px))
    if args.workers:
        config.dask.n_workers = args.workers
    workers = local_workers(config.dask)
    rows = []

    def timed(name, fn, **extra):
        start = time.perf_counter()
        result = fn()
        row = {"stage": name, "seconds": round(time.perf_counter() - start, 2), **extra}
        rows.append(row)
        print(json.dumps(row), flush=True)
        return result

    zones = load_zones(config.areas)
    plan = plan_areas(config, zones)[0]
    area = start_area(config, plan, Reporter(), client=None)   # planned, not submitted
    shape = tuple(area.geobox.shape)

    profile = cProfile.Profile()
    timed("one window, in this process", lambda: profile.runcall(area.work[0].compute, scheduler="sync"))
    stats = pstats.Stats(profile).stats
    parts = {part: round(sum(v[3] for (_, _, fn), v in stats.items() if fn in names), 2)
             for part, names in PARTS.items()}
    rows[-1]["parts_s (under cProfile)"] = parts
    print(json.dumps(parts), flush=True)

    with LocalCluster(n_workers=workers, threads_per_worker=config.dask.threads_per_worker, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        results = timed("windows", lambda: client.gather(client.compute(area.work)))
    d = config.detection

    def scars():
        candidates = merge_candidates([r.candidates for r in results])
        table = find_scars_sparse(candidates, shape, area.geobox.transform, CONFIDENCE_CODES[d.min_confidence],
                                  d.min_area_ha)
        return candidates, table

    candidates, table = timed("scars", scars)
    rows[-1].update(candidates=int(candidates.index.size), context=int(candidates.context.size), scars=len(table))
    summary = {"scene": args.scene.name, "grid": shape, "workers": workers, "chunks": area.n_chunks,
               "chunk_px": area.chunk_px, "one_window_s": rows[0]["seconds"], "one_window_parts_s": parts,
               "windows_s": rows[1]["seconds"], "scars_and_features_s": rows[2]["seconds"],
               "candidates": rows[2]["candidates"], "context": rows[2]["context"], "scars": rows[2]["scars"]}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
