"""Diagnose a blind-benchmark run: each detected scar's features, class probabilities and truth.

    python benchmarks/blind_diagnose.py WORK/seedN/ENCODING-REGIME [--all]
    python benchmarks/blind_diagnose.py WORK/seed*/*-dense WORK/seed*/*-composites --pool

Runs the detection of each run's config again through the Python API (nothing written), matches
every scar to the planted truth (``truth.npz`` one folder up) and prints the classifier features
of scars whose class is wrong or that lie off the planted change (``--all``: every scar), or,
with ``--pool``, the counts the README's diagnosis quotes (class errors by sediment share and
felled-first stage, counterfactual features, false scars, and which ``other`` scars the
river-dynamics rule leaves unissued: by a river or by water that is no river).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from rasterio.features import rasterize

from pipeline.classify import load_classifier, river_dynamics
from pipeline.config import load_config
from pipeline.detect import detect
from pipeline.features import FEATURES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_blind import ground_under, load_truth  # noqa: E402


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


def scar_rows(run_dir: Path) -> pd.DataFrame:
    """One row per detected scar of a run: truth, predicted class and probability, features."""
    config = load_config(run_dir / "config.yaml")
    meta, truth = load_truth(run_dir.parent)
    _, detections = detect(config)
    det = detections[0]
    scars = det.scars
    if scars.empty:
        return pd.DataFrame()
    model = load_classifier(config.model)
    classes, probs = model.predict(scars)
    unissued = river_dynamics(scars, classes)
    match = scar_truth(scars, det.epsg, meta, truth)
    kinds = {s["id"]: (s["class"], s["kind"], s["area_ha"], s.get("prep_looks", 0)) for s in meta["scars"]}
    out = []
    for i in range(len(scars)):
        sid = int(match.truth_id[i])
        tcls, kind, _, prep = kinds.get(sid, ("none", match.under[i], 0, 0))
        out.append({"run": str(run_dir), "scar": i, "truth": tcls, "kind": kind, "prep": prep, "pred": classes[i],
                    "p": round(float(probs[i]), 2), "on": match.on_change[i],
                    "conf": scars["confidence"].iloc[i] if "confidence" in scars else None,
                    "path": scars["detection_path"].iloc[i] if "detection_path" in scars else None,
                    "near_water": float(scars["near_water_fraction"].iloc[i]),
                    "near_river": float(scars["near_river_fraction"].iloc[i]),
                    "own_water": float(scars["water_fraction"].iloc[i]), "river_rule": bool(unissued[i]),
                    **{f: float(scars[f].iloc[i]) for f in FEATURES if f in scars}})
    return pd.DataFrame(out)


def pool_summary(rows: pd.DataFrame, model) -> None:
    """The counts the README's diagnosis quotes, over every run given."""
    found = rows[rows.on >= 0.3]
    mine = found[found.truth == "mining"].copy()
    clear = found[found.truth == "clearing"]
    print(f"detected mining scars {len(mine)}: {mine.pred.value_counts().to_dict()}; "
          f"detected clearings {len(clear)}: {clear.pred.value_counts().to_dict()}")
    mine["dark"] = mine.sediment_share < 0.1
    for (dark, prep), g in mine.groupby(["dark", "prep"]):
        print(f"  sediment_share {'< 0.1' if dark else '>= 0.1'}, felled first {prep}: "
              f"{(g.pred == 'clearing').sum()}/{len(g)} clearing; medians vis {g.vis_brightness.median():.3f}, "
              f"red/SWIR1 {g.red_swir1.median():.2f}, p {g.p.median():.2f}")
    right = mine[mine.pred == "mining"]
    q = lambda v: [round(x, 2) for x in v.quantile([0.1, 0.5, 0.9])]  # noqa: E731
    print(f"  red/SWIR1 10/50/90 %: clearings {q(clear.red_swir1)}, mines called mining {q(right.red_swir1)}")
    # counterfactuals: give the dark mines the median value of the mines called right
    dark = mine[mine.dark]
    for feats in (["sediment_share"], ["vis_brightness"], ["sediment_share", "vis_brightness"], ["red_swir1"],
                  ["burnt_share"]):
        x = dark[list(FEATURES)].copy()
        for f in feats:
            x[f] = right[f].median()
        cls, _ = model.predict(x)
        print(f"  dark mines with {'+'.join(feats)} of the right ones: {(cls == 'mining').sum()}/{len(dark)} mining "
              f"(as they are: {(dark.pred == 'mining').sum()})")
    bright = right[right.sediment_share >= 0.1]
    x = bright[list(FEATURES)].copy()
    x["sediment_share"] = 0.0
    cls, _ = model.predict(x)
    print(f"  mines called mining (sediment_share >= 0.1) with sediment_share 0: {(cls == 'mining').sum()}/{len(bright)} "
          "stay mining")
    false = rows[rows.on < 0.3]
    print(f"false scars {len(false)}: {false.kind.value_counts().to_dict()}, classes {false.pred.value_counts().to_dict()}")
    bars = false[false.kind == "sandbar"]
    if len(bars):
        print(f"  on bars: baseline NDVI {bars.baseline_ndvi.min():.2f}-{bars.baseline_ndvi.max():.2f}, "
              f"{bars.dist_water_m.min():.0f}-{bars.dist_water_m.max():.0f} m from water, "
              f"paths {bars.path.value_counts().to_dict()}, p of `mining` ones "
              f"{bars[bars.pred == 'mining'].p.min()}-{bars[bars.pred == 'mining'].p.max()}")
    # the river-dynamics rule (pipeline.classify.river_dynamics): `other` scars mostly within 60 m of
    # water with under 10 % water of their own; not issued only when that water is a river
    other = rows[rows.pred == "other"]
    by_water = other[(other.near_water >= 0.5) & (other.own_water < 0.1)]
    for name, group in (("false", by_water[by_water.on < 0.3]), ("true", by_water[by_water.on >= 0.3])):
        print(f"  `other` {name} scars by the water with no water of their own: {len(group)}, by a river (not "
              f"issued) {int(group.river_rule.sum())} {group[group.river_rule].kind.value_counts().to_dict()}, "
              f"by water that is no river (issued) {int((~group.river_rule).sum())} "
              f"{group[~group.river_rule].kind.value_counts().to_dict()}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dirs", type=Path, nargs="+")
    ap.add_argument("--all", action="store_true", help="print every scar, not only the wrong ones")
    ap.add_argument("--pool", action="store_true", help="pool the runs and print the diagnosis counts")
    args = ap.parse_args(argv)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 60)
    parts = [scar_rows(d) for d in args.run_dirs]
    rows = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    if args.pool:
        pool_summary(rows, load_classifier(load_config(args.run_dirs[0] / "config.yaml").model))
        return 0
    table = rows if args.all else rows[(rows.truth != rows.pred) & (rows.truth != "none") | (rows.on < 0.3)]
    print(table.round(3).T.to_string() if len(table) else "no misclassified or false scars")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
