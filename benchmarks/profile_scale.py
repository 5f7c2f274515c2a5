"""Where `cec run`'s detection time goes on a scale-benchmark scene, stage by stage.

Usage::

    python benchmarks/profile_scale.py /tmp/cec-bench-scale/scene_4000_9_v1 [--workers 2]

Plans the scene's area as ``cec run`` does (:func:`pipeline.detect.start_area`, on a LocalCluster
with the default workers) and computes, each from scratch on the same cluster:

``read``
    load and decode every band of every look onto the area grid, scaled to reflectance (odc-stac);
``change``
    ``read`` plus the clear mask, the indices and the per-pixel change test of every chunk;
``chunks``
    ``change`` plus the chunk tasks: halo, candidates and their context (what ``cec run`` computes);
``scars``
    in this process: merge the chunks' candidates, label them, describe every scar (features).

Each later stage includes the earlier ones, so the differences say what each step costs. One JSON
line per stage (seconds, plus candidate and context pixel counts) and a summary are printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene", type=Path)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    import dask
    from distributed import Client, LocalCluster

    sys.path.insert(0, str(HERE))
    import bench_scale

    from pipeline.aoi import load_zones
    from pipeline.change import CONFIDENCE_CODES
    from pipeline.budget import local_workers
    from pipeline.config import load_config
    from pipeline.detect import _plan_change, start_area
    from pipeline.plan import plan_areas
    from pipeline.progress import Reporter
    from pipeline.sources.load import href_patcher
    from pipeline.streaming import find_scars_sparse, merge_candidates

    out = Path("/tmp") / f"cec-profile-{args.scene.name}"
    config = load_config(bench_scale.write_config(args.scene, out))
    if args.workers:
        config.dask.n_workers = args.workers
    workers = local_workers(config.dask)
    rows = []
    with LocalCluster(n_workers=workers, threads_per_worker=config.dask.threads_per_worker, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        zones = load_zones(config.areas)
        plan = plan_areas(config, zones)[0]
        area = start_area(config, plan, Reporter(), client=None)   # planned, not submitted
        obs, lazy, _ = _plan_change(config, area.usable, area.geobox, href_patcher(area.usable))
        shape = tuple(area.geobox.shape)

        def timed(name, fn, **extra):
            start = time.perf_counter()
            result = fn()
            row = {"stage": name, "seconds": round(time.perf_counter() - start, 2), **extra}
            rows.append(row)
            print(json.dumps(row), flush=True)
            return result

        bands = [obs.data[b].data.sum(axis=(1, 2)) for b in obs.data.data_vars]
        timed("read", lambda: dask.compute(*bands))
        change = lazy.drop_vars(["cec_negative_fraction", "cec_clear_px"])
        layers = [change[n].data.sum(axis=(-2, -1)) for n in change.data_vars]
        timed("change", lambda: dask.compute(*layers))
        parts = timed("chunks", lambda: client.gather(client.compute(area.work)))[:-2]
        d = config.detection

        def scars():
            candidates = merge_candidates(parts)
            table = find_scars_sparse(candidates, shape, area.geobox.transform, CONFIDENCE_CODES[d.min_confidence],
                                      d.min_area_ha)
            return candidates, table

        candidates, table = timed("scars", scars)
        rows[-1].update(candidates=int(candidates.index.size), context=int(candidates.context.size),
                        scars=len(table))
    summary = {"scene": args.scene.name, "grid": shape, "workers": workers, "chunks": area.n_chunks,
               "read_s": rows[0]["seconds"], "change_test_s": round(rows[1]["seconds"] - rows[0]["seconds"], 2),
               "candidates_and_context_s": round(rows[2]["seconds"] - rows[1]["seconds"], 2),
               "scars_and_features_s": rows[3]["seconds"], "candidates": rows[3]["candidates"],
               "context": rows[3]["context"], "scars": rows[3]["scars"]}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
