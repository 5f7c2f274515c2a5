"""Detection benchmark on generated scenes that differ from the demo and the training scenes.

Other 5 km windows around La Pampa (never the demo's, never the first six training windows),
other seeds (so other clearing layouts, onsets, cloud, haze and shadow patterns), other cloud
amounts, and look-alikes switched on in every scene: an eroding river bank, old clearings
regrowing and a stronger phenology. For each scene: run the pipeline with the committed model,
then score the alerts against the planted truth (scars at or above the mapping unit):

- object recall (truth scars covered >= 30 % by alerts), object precision of the enforcement
  alerts (`mining`, `clearing`: >= 30 % of the alert on planted scars), class accuracy of
  found scars, the confusion matrix;
- look-alikes: `mining`/`clearing` alerts mostly off the planted scars, by the look-alike they
  touch (must be 0), the hectares by which correct alerts spill onto look-alikes, and the
  `other` alerts (expected only on eroding banks: natural loss).

Usage (from the repository root; ~1-2 min per scene on 2 cores):

    python benchmarks/bench_detection.py [--scenes 4] [--workers 2] [--out benchmarks/results.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEMO_DATA = REPO / "data" / "demo"

from pipeline.testing import scene as demo  # noqa: E402
from pipeline.training.evaluate import score_objects  # noqa: E402

# (dx km, dy km) of the window's upper-left corner from the demo's; none is a training window.
WINDOWS_KM = ((0, 10), (5, 5), (5, 0), (10, 10), (-15, -5), (5, 10))
ENFORCEMENT = ("mining", "clearing")


def bench_specs(n: int) -> list[demo.SceneSpec]:
    """``n`` benchmark scenes: seeds 301+, other windows, cloud 20-40 %, look-alikes on."""
    base = demo.DEMO_SPEC
    return [dataclasses.replace(base, seed=301 + i, x0=base.x0 + 1000.0 * dx, y1=base.y1 + 1000.0 * dy,
                                cloud_fraction=(0.2, 0.3, 0.4)[i % 3], n_clearings=6 + 2 * (i % 3),
                                bank_erosion_m=50.0, bank_erosion_sites=2, n_old_clearings=2,
                                phenology_amplitude=2.0 + (i % 2))
            for i, (dx, dy) in enumerate(WINDOWS_KM[:n])]


def scene_config(folder: Path, catalog: Path, name: str) -> Path:
    raw = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    base = REPO / "configs"
    raw["name"] = name
    raw["areas"]["path"] = str((base / raw["areas"]["path"]).resolve())
    raw["areas"]["buffer_zones"] = str((base / raw["areas"]["buffer_zones"]).resolve())
    raw["source"]["stac_catalog"] = str(catalog)
    raw["model"] = str(REPO / "models" / "scar-classifier.skops")
    raw["output"]["dir"] = str(folder / "out")
    # A fresh output folder: a run remembers earlier runs' alerts in its output folder.
    shutil.rmtree(folder / "out", ignore_errors=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def score_scene(alerts: gpd.GeoDataFrame, scene: Path) -> dict:
    """Scores of one scene's alerts (EPSG:32719) against its truth and look-alikes.

    Recall and class accuracy use every alert (a planted mining scar alerted as ``other`` is a
    class error); precision is over the enforcement alerts (``mining``, ``clearing``). A false
    alert is an enforcement alert with under half of its area on planted scars; it is charged
    to the look-alikes it touches. ``spill_ha`` is the part of correct alerts that spills onto
    a look-alike (edge pixels of a scar beside the river, say).
    """
    import shapely

    truth = gpd.read_file(scene / "truth_utm.geojson").set_crs(32719, allow_override=True)
    # Only scars mostly inside the monitored zones can be alerted (nothing outside is, by contract);
    # the generator's truth calls a scar "buffer" as soon as it touches the buffer zone.
    monitored = pd.concat([gpd.read_file(REPO / "data" / "demo" / name).to_crs(32719)
                           for name in ("protected_areas.geojson", "buffer_zones.geojson")]).union_all()
    inside = truth.intersection(monitored).area / truth.area
    truth = truth[~truth["below_mmu"].astype(bool) & (inside >= 0.5)].reset_index(drop=True)
    lookalikes = gpd.read_file(scene / "lookalikes.geojson").set_crs(32719, allow_override=True)
    meta = json.loads((scene / "scene.json").read_text())
    regions = {kind: group.union_all() for kind, group in lookalikes.groupby("kind") if kind != "swath_edge"}
    if meta.get("swath_edge_line_utm"):
        regions["swath_edge"] = shapely.LineString(meta["swath_edge_line_utm"]).buffer(20.0)
    enforcement = alerts[alerts["class"].isin(ENFORCEMENT)].reset_index(drop=True)
    every = score_objects(alerts.reset_index(drop=True), truth)
    enforced = score_objects(enforcement, truth)
    planted = truth.union_all() if len(truth) else shapely.Polygon()
    on_truth = enforcement.intersection(planted).area / enforcement.area if len(enforcement) else pd.Series([], dtype=float)
    false = enforcement[(on_truth < 0.5).to_numpy()] if len(enforcement) else enforcement
    false_by_kind = {kind: int(false.intersects(region).sum()) for kind, region in regions.items()}
    spill = {kind: round(float(enforcement.intersection(region.difference(planted)).area.sum() / 1e4), 3)
             for kind, region in regions.items()}
    others = alerts[alerts["class"] == "other"]
    erosion = regions.get("bank_erosion")
    other_on_erosion = sum(1 for g in others.geometry
                           if erosion is not None and g.intersection(erosion).area >= 0.5 * g.area)
    found = int(round(every.recall * len(truth))) if len(truth) else 0
    return {"n_truth": len(truth), "n_alerts": len(alerts), "n_enforcement_alerts": len(enforcement),
            "recall": every.recall, "precision": enforced.precision, "class_accuracy": every.class_accuracy,
            "found": found,
            "correct_alerts": int(round(enforced.precision * len(enforcement))) if len(enforcement) else 0,
            "class_correct": int(round(every.class_accuracy * found)) if found else 0,
            "confusion": every.as_dict()["confusion"],
            "false_alerts": len(false), "false_alerts_on_lookalikes": false_by_kind, "spill_ha": spill,
            "other_alerts": len(others), "other_alerts_on_bank_erosion": other_on_erosion}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results.json")
    args = parser.parse_args()

    from pipeline.cli import dask_client
    from pipeline.config import DaskConfig, load_config
    from pipeline.run import run

    rows = []
    with dask_client(DaskConfig(n_workers=args.workers)):
        for i, spec in enumerate(bench_specs(args.scenes)):
            folder = DEMO_DATA / "generated" / f"bench-{i}"
            t0 = time.perf_counter()
            catalog = demo.ensure_scene(spec, folder, DEMO_DATA)
            result = run(load_config(scene_config(folder, catalog, f"bench-{i}")))
            row = {"scene": f"bench-{i}", "seed": spec.seed, "x0": spec.x0, "y1": spec.y1,
                   "cloud_fraction": spec.cloud_fraction, **score_scene(result.alerts.to_crs(32719), folder),
                   "seconds": round(time.perf_counter() - t0, 1)}
            rows.append(row)
            print(f"{row['scene']}: recall {row['recall']:.3f} precision {row['precision']:.3f} "
                  f"class accuracy {row['class_accuracy']:.3f} ({row['seconds']} s)", flush=True)
    table = pd.DataFrame(rows)
    total = {
        "scenes": len(rows),
        "truth_scars": int(table["n_truth"].sum()),
        "recall": float(table["found"].sum() / table["n_truth"].sum()),
        "precision": float(table["correct_alerts"].sum() / max(table["n_enforcement_alerts"].sum(), 1)),
        "class_accuracy": float(table["class_correct"].sum() / max(table["found"].sum(), 1)),
        "false_alerts": int(table["false_alerts"].sum()),
        "false_alerts_on_lookalikes": int(sum(sum(r["false_alerts_on_lookalikes"].values()) for r in rows)),
        "spill_ha_onto_lookalikes": round(float(sum(sum(r["spill_ha"].values()) for r in rows)), 3),
        "other_alerts": int(table["other_alerts"].sum()),
        "other_alerts_on_bank_erosion": int(table["other_alerts_on_bank_erosion"].sum()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"total": total, "scenes": rows}, indent=1, default=str) + "\n")
    print(table[["scene", "seed", "cloud_fraction", "n_truth", "n_enforcement_alerts", "recall", "precision",
                 "class_accuracy", "false_alerts", "other_alerts", "other_alerts_on_bank_erosion"]].to_string(index=False))
    print(json.dumps(total, indent=1))


if __name__ == "__main__":
    main()
