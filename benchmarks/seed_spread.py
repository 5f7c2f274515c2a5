"""Spread over training seeds: the same detections, classified by models of several training seeds.

Blind results move by several mines from one training seed to another, so a change to the
features or the sampler can only be judged over seeds. Detection does not depend on the model,
so this runs it once for each benchmark scene and then, for each training seed, samples the
training scars (``sample_table``, as ``cec train`` without ``--config``), fits the calibrated
forest and classifies the stored scars exactly as ``cec run`` does (``batch.classify_area``: bank
rule, alerts, the same polygons), scoring them with each benchmark's own scorer:

* blind scenes (``bench_blind.score``; ``--blind-seeds``): mines called ``clearing`` / ``other``,
  clearings called ``mining``, false ``mining`` alerts, class accuracy per source and regime;
* semi-real sites (``bench_sites.score``; ``--sites-seed``): mining sites whose main class is
  ``mining``, clearing sites whose main class is ``mining``, natural sites alerted;
* the project's generator (``bench_detection.score_scene``; ``--detection-scenes``).

For the bundled model's seed (0) the figures equal those of the benchmarks themselves (checked
on main 513b4da: blind seeds 1–4, bench_sites seed 0, bench_detection 4 scenes). To compare two
versions of the features, run it on both commits; ``--detections FILE`` keeps the detections in a
pickle, so the second commit classifies the very same ones (detection is the slow part; a
commit that does not read a layer the other added ignores it).

    python benchmarks/seed_spread.py --train-seeds 0 1 2 3 4 5 --blind-seeds 1 2 3 4
    python benchmarks/seed_spread.py --train-seeds 0 1 2 3 4 5 --blind-seeds 1 2 3 4 5 6 7 8 --detections /tmp/det.pkl
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_blind  # noqa: E402
import blind_scene  # noqa: E402

from pipeline.batch import classify_area  # noqa: E402
from pipeline.classify import calibrated_estimator  # noqa: E402
from pipeline.classify.sklearn_model import ScarModel  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.detect import detect  # noqa: E402
from pipeline.features import FEATURES  # noqa: E402
from pipeline.training.sampler import SpectralLibrary, sample_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ENDMEMBERS = REPO / "data" / "endmembers" / "spectra.csv"
PROVENANCE = {"run_name": "seed-spread", "run_id": "seed-spread", "model_version": "seed-spread",
              "pipeline_version": "seed-spread"}


def seed_model(table: pd.DataFrame, seed: int) -> ScarModel:
    """The estimator ``cec train --seed`` fits on ``table`` (calibrated forest, every row)."""
    x = np.nan_to_num(table[list(FEATURES)].to_numpy(dtype=float))
    estimator = calibrated_estimator(seed).fit(x, table["label"].to_numpy())
    return ScarModel(estimator, {"features": list(FEATURES)}, Path(f"seed-{seed}.skops"))


def alerts_of(detections, model, min_area_ha: float, resolution_m: float, natural_loss: str) -> gpd.GeoDataFrame:
    parts = [classify_area(d, model, PROVENANCE, natural_loss, (min_area_ha * 1e4, resolution_m)) for d in detections]
    parts = [p for p in parts if len(p)]
    if not parts:
        return gpd.GeoDataFrame({"class": [], "probability": [], "area_ha": [], "protected_area_id": []},
                                geometry=[], crs=4326)
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=4326)


def blind_detections(seeds: list[int], work: Path) -> list[tuple]:
    """(seed, encoding, regime, config, detections, meta, truth) of every blind run."""
    runs = []
    for seed in seeds:
        folder = work / f"seed{seed}"
        scene, meta, truth = bench_blind.prepare_seed(seed, folder, 600)
        for encoding in blind_scene.ENCODINGS:
            for regime in blind_scene.REGIMES:
                run_dir = folder / f"{encoding}-{regime}"
                shutil.rmtree(run_dir, ignore_errors=True)
                blind_scene.write_encoding(scene, encoding, regime, run_dir)
                config = load_config(bench_blind.write_config(run_dir, encoding, regime, f"spread-{seed}"))
                _, detections = detect(config)
                runs.append((seed, encoding, regime, config, detections, meta, truth))
                shutil.rmtree(run_dir, ignore_errors=True)
        print(f"blind seed {seed}: detected", flush=True)
        del scene
    return runs


def blind_scores(runs, model) -> dict:
    rows = []
    for seed, encoding, regime, config, detections, meta, truth in runs:
        d = config.detection
        alerts = alerts_of(detections, model, d.min_area_ha, d.resolution_m, d.natural_loss)
        res = {"all": bench_blind.score(alerts, truth, meta, 0.5), "scars_ge_1ha": bench_blind.score(alerts, truth, meta, 1.0)}
        if regime == "composites":
            res["visible_in_composite"] = bench_blind.score(alerts, truth, meta, 1.0, visible_only=True)
        rows.append({**res, "seed": seed, "encoding": encoding, "regime": regime})
    table = bench_blind.summarise(rows)
    return {"total": _totals(table),
            "by_blind_seed": {seed: _totals(bench_blind.summarise([r for r in rows if r["seed"] == seed]))
                              for seed in sorted({r["seed"] for r in rows})},
            "by_source": {k: {"class_accuracy": v["class_accuracy"], "precision": v["precision"],
                              "recall": v["recall"], "confusion": v["confusion"]} for k, v in table.items()}}


def _totals(table: dict) -> dict:
    """Class errors and false ``mining`` alerts of a bench_blind summary, pooled over its runs."""
    total = {"mining_as_clearing": 0, "mining_as_other": 0, "clearing_as_mining": 0, "correct": 0, "found": 0,
             "false_mining_alerts": 0}
    for entry in table.values():
        c = entry["confusion"]
        total["mining_as_clearing"] += c["mining"].get("clearing", 0)
        total["mining_as_other"] += c["mining"].get("other", 0)
        total["clearing_as_mining"] += c["clearing"].get("mining", 0)
        total["correct"] += c["mining"].get("mining", 0) + c["clearing"].get("clearing", 0)
        total["found"] += sum(v for k, v in c["mining"].items() if k != "missed")
        total["found"] += sum(v for k, v in c["clearing"].items() if k != "missed")
        total["false_mining_alerts"] += entry["false_alerts_by_class"].get("mining", 0)
    total["class_accuracy"] = round(total["correct"] / total["found"], 3) if total["found"] else None
    return total


def sites_detections(seed: int, work: Path):
    import bench_sites

    if bench_sites.missing_data():
        print("sites: skipped, the shared real data are not on this machine", flush=True)
        return None
    sites = bench_sites.build_sites(bench_sites.Sources.load(), seed, {
        "sentinel-2": {"mining": 80, "clearing": 30, "natural": 30},
        "landsat": {"mining": 40, "clearing": 15, "natural": 15}})
    out = {}
    for sensor in ("sentinel-2", "landsat"):
        family = [s for s in sites if s.sensor == sensor]
        catalog, areas = bench_sites.write_family(family, sensor, work / "sites" / sensor)
        config = load_config(bench_sites.write_config(work / "sites" / sensor, catalog, areas, sensor,
                                                      bench_sites.MODEL))
        out[sensor] = (family, config, detect(config)[1])
    print("sites: detected", flush=True)
    return out


def sites_scores(families, model) -> dict:
    import bench_sites

    out = {}
    for sensor, (family, config, detections) in families.items():
        d = config.detection
        summary, _ = bench_sites.score(family, alerts_of(detections, model, d.min_area_ha, d.resolution_m,
                                                         d.natural_loss))
        out[sensor] = {k: summary[k]["count"] for k in (
            "mining_sensitivity_main_class_mining", "clearing_sites_main_class_clearing",
            "clearing_sites_main_class_mining", "natural_sites_alerted")}
    return out


def generator_detections(n: int):
    import bench_detection

    out = []
    for i, spec in enumerate(bench_detection.bench_specs(n)):
        folder = bench_detection.DEMO_DATA / "generated" / f"bench-{i}"
        catalog = bench_detection.demo.ensure_scene(spec, folder, bench_detection.DEMO_DATA)
        config = load_config(bench_detection.scene_config(folder, catalog, f"bench-{i}"))
        out.append((folder, config, detect(config)[1]))
    print("generator scenes: detected", flush=True)
    return out


def generator_scores(scenes, model) -> dict:
    import bench_detection

    found = correct = truth = 0
    for folder, config, detections in scenes:
        d = config.detection
        alerts = alerts_of(detections, model, d.min_area_ha, d.resolution_m, d.natural_loss)
        s = bench_detection.score_scene(alerts.to_crs(32719), folder)
        found, correct, truth = found + s["found"], correct + s["class_correct"], truth + s["n_truth"]
    return {"truth_scars": truth, "found": found, "class_correct": correct,
            "class_accuracy": round(correct / found, 3) if found else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--per-class", type=int, default=400)
    ap.add_argument("--blind-seeds", type=int, nargs="*", default=[1, 2, 3, 4])
    ap.add_argument("--sites-seed", type=int, default=0, help="bench_sites seed; -1: no semi-real sites")
    ap.add_argument("--detection-scenes", type=int, default=4, help="bench_detection scenes; 0: none")
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "cec-seed-spread")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results_seeds.json")
    ap.add_argument("--detections", type=Path, default=None,
                    help="pickle of the detections: written after detecting, read instead of detecting when it "
                         "exists (to classify the same detections with two versions of the sampler or features; "
                         "a pickle is code: only load one you wrote)")
    args = ap.parse_args(argv)
    started = time.monotonic()
    if args.detections is not None and args.detections.exists():
        with args.detections.open("rb") as f:
            blind, sites, generator = pickle.load(f)
    else:
        blind = blind_detections(args.blind_seeds, args.work / "blind") if args.blind_seeds else []
        sites = sites_detections(args.sites_seed, args.work) if args.sites_seed >= 0 else None
        generator = generator_detections(args.detection_scenes) if args.detection_scenes else []
        if args.detections is not None:
            args.detections.parent.mkdir(parents=True, exist_ok=True)
            with args.detections.open("wb") as f:
                pickle.dump((blind, sites, generator), f)
    library = SpectralLibrary.from_csv(ENDMEMBERS)
    per_seed = []
    for seed in args.train_seeds:
        model = seed_model(sample_table(library, args.per_class, seed), seed)
        row = {"train_seed": seed}
        if blind:
            row["blind"] = blind_scores(blind, model)
        if sites:
            row["sites"] = sites_scores(sites, model)
        if generator:
            row["generator"] = generator_scores(generator, model)
        per_seed.append(row)
        print(json.dumps({"train_seed": seed, "blind": row.get("blind", {}).get("total"), "sites": row.get("sites"),
                          "generator": row.get("generator")}), flush=True)
    result = {"command": "python benchmarks/seed_spread.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "features": list(FEATURES), "per_class": args.per_class, "blind_seeds": args.blind_seeds,
              "sites_seed": args.sites_seed, "detection_scenes": args.detection_scenes, "per_seed": per_seed,
              "seconds": round(time.monotonic() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
