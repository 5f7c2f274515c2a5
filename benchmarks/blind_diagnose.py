"""Diagnose a blind-benchmark run: each detected scar's features, class probabilities and truth.

    python benchmarks/blind_diagnose.py WORK/seedN/ENCODING-REGIME [--all]

Runs the detection of the run's config again through the Python API (nothing written), matches
every scar to the planted truth (``truth.npz`` one folder up) and prints the classifier features
of scars whose class is wrong or that lie off the planted change (``--all``: every scar).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from rasterio.features import rasterize

from pipeline.classify import load_classifier
from pipeline.config import load_config
from pipeline.detect import detect
from pipeline.features import FEATURES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_blind import ground_under  # noqa: E402


def scar_truth(scars, epsg_scars: int, meta: dict, truth: dict) -> pd.DataFrame:
    n, res = int(meta["size_px"]), float(meta["resolution_m"])
    tf = rasterio.transform.from_origin(*meta["origin"], res, res)
    geoms = gpd.GeoSeries(list(scars["geometry"]), crs=epsg_scars).to_crs(epsg=int(meta["epsg"]))
    rows = []
    for g in geoms:
        pix = rasterize([(g, 1)], out_shape=(n, n), transform=tf, fill=0, dtype="uint8").astype(bool)
        ids = truth["scar_id"][pix]
        hit = ids[ids >= 0]
        sid = int(np.bincount(hit).argmax()) if hit.size else -1
        on = float(np.mean(ids >= 0)) if pix.any() else 0.0
        ground = ground_under(truth, pix)
        rows.append({"truth_id": sid, "on_change": round(on, 2), "under": ground if on < 0.3 else ""})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--json", type=Path, help="also write every scar's row (truth, class, features) here")
    args = ap.parse_args(argv)
    config = load_config(args.run_dir / "config.yaml")
    meta = json.loads((args.run_dir.parent / "truth.json").read_text())
    truth = dict(np.load(args.run_dir.parent / "truth.npz"))
    _, detections = detect(config)
    det = detections[0]
    scars = det.scars
    model = load_classifier(config.model)
    classes, probs = model.predict(scars)
    match = scar_truth(scars, det.epsg, meta, truth)
    kinds = {s["id"]: (s["class"], s["kind"], s["area_ha"], s.get("prep_looks", 0)) for s in meta["scars"]}
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 60)
    out = []
    for i in range(len(scars)):
        sid = int(match.truth_id[i])
        tcls, kind, area, prep = kinds.get(sid, ("none", match.under[i], 0, 0))
        row = {"scar": i, "truth": tcls, "kind": kind, "prep": prep, "pred": classes[i],
               "p": round(float(probs[i]), 2), "on": match.on_change[i],
               "conf": scars["confidence"].iloc[i] if "confidence" in scars else None,
               "path": scars["detection_path"].iloc[i] if "detection_path" in scars else None,
               **{f: round(float(scars[f].iloc[i]), 3) for f in FEATURES if f in scars}}
        out.append(row)
    table = pd.DataFrame(out)
    if args.json:
        table.assign(run=str(args.run_dir)).to_json(args.json, orient="records", indent=0)
    if not args.all:
        table = table[(table.truth != table.pred) & (table.truth != "none") | (table.on < 0.3)]
    print(table.T.to_string() if len(table) else "no misclassified or false scars")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
