"""Blind benchmark: ``cec run`` on scenes of a generator written without the project's generators.

Each seed draws a Madre de Dios-like scene (``benchmarks/blind_scene.py``), writes it as Earth
Search S2, Planetary Computer S2 and Landsat C2 L2 items, each as a dense series (with masks) and
as two median composites (no mask), runs the real ``cec run`` job with the bundled model on each,
and scores the alerts against the planted truth:

* object recall: a truth scar ≥ ``min_area_ha`` is found when alerts cover ≥ 30 % of it;
* object precision: a ``mining`` / ``clearing`` alert is right when ≥ 30 % of it lies on planted
  change; ``precision_all_classes`` counts every alert issued, ``other`` ones included;
* class accuracy on found scars (class = the class of the alerts covering most of the scar) and
  the confusion matrix truth × predicted (``missed`` when not found);
* false alerts (< 30 % on planted change) by what lies under them: sandbar, seasonal water,
  cloud or shadow, old mining, else ``other_ground``.

    python benchmarks/bench_blind.py --seeds 1 2      # writes benchmarks/results_blind.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.features import rasterize

sys.path.insert(0, str(Path(__file__).resolve().parent))
import blind_scene  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COVER_MIN = 0.3
CLASSES = ("mining", "clearing", "other")
LOOKALIKES = ("sandbar", "seasonal_water", "old_mining", "cloud")
"""Ground a false alert is put down to, in this order: the first that covers ≥ 30 % of it (the
cloud mask is the union of every monitor look's clouds and shadows, so it comes last)."""


def ground_under(truth: dict[str, np.ndarray], pix: np.ndarray) -> str:
    """What lies under the pixels ``pix`` of a false alert."""
    if pix.any():
        for name in LOOKALIKES:
            if float(np.mean(truth[f"lookalike_{name}"][pix])) >= COVER_MIN:
                return name
    return "other_ground"


def alert_index_raster(alerts: gpd.GeoDataFrame, meta: dict) -> np.ndarray:
    """Alert index + 1 (0 = none) on the 10 m truth grid."""
    n = int(meta["size_px"])
    res = float(meta["resolution_m"])
    x0, y0 = meta["origin"]
    out = np.zeros((n, n), np.int32)
    if len(alerts) == 0:
        return out
    utm = alerts.to_crs(epsg=int(meta["epsg"]))
    tf = rasterio.transform.from_origin(x0, y0, res, res)
    shapes = [(geom, i + 1) for i, geom in enumerate(utm.geometry) if geom is not None and not geom.is_empty]
    return rasterize(shapes, out_shape=(n, n), transform=tf, fill=0, dtype="int32")


def score(alerts: gpd.GeoDataFrame, truth: dict[str, np.ndarray], meta: dict, min_area_ha: float = 0.5,
          visible_only: bool = False) -> dict:
    """Object scores of ``alerts`` (with a ``class`` column) against the planted truth."""
    ids = truth["scar_id"]
    idx = alert_index_raster(alerts, meta)
    classes = list(alerts["class"]) if len(alerts) else []
    n_mon = len(meta["dates"]) - int(meta["n_baseline"])
    scars = [s for s in meta["scars"] if s["area_ha"] >= min_area_ha]
    if visible_only:  # the change shows in more than half of the monitor looks (a median shows it)
        scars = [s for s in scars if n_mon - (s["onset_look"] - int(meta["n_baseline"])) > n_mon / 2]
    confusion = {c: {p: 0 for p in (*CLASSES, "missed")} for c in ("mining", "clearing")}
    per_scar = []
    for s in scars:
        pix = ids == s["id"]
        under = idx[pix]
        covered = float(np.mean(under > 0)) if pix.any() else 0.0
        pred = "missed"
        prob = None
        if covered >= COVER_MIN:
            by_class = Counter()
            for a in under[under > 0]:
                by_class[classes[a - 1]] += 1
            pred = by_class.most_common(1)[0][0]
            main = Counter(under[under > 0]).most_common(1)[0][0]
            prob = float(alerts.iloc[main - 1].get("probability", np.nan))
        confusion[s["class"]][pred] += 1
        per_scar.append({"id": s["id"], "class": s["class"], "kind": s["kind"], "area_ha": s["area_ha"],
                         "onset_look": s["onset_look"], "covered": round(covered, 3), "predicted": pred,
                         "probability": prob})
    found = [p for p in per_scar if p["predicted"] != "missed"]
    # alerts: share on planted change; false ones by what lies beneath
    n_alerts = len(alerts)
    tp = fp = on_all = 0
    false_by = Counter()
    false_by_class = Counter()
    per_alert = []
    for i in range(n_alerts):
        pix = idx == i + 1
        if not pix.any():  # smaller than a truth pixel: its centroid
            c = alerts.to_crs(epsg=int(meta["epsg"])).geometry.iloc[i].centroid
            col = int((c.x - meta["origin"][0]) // meta["resolution_m"])
            row = int((meta["origin"][1] - c.y) // meta["resolution_m"])
            pix = np.zeros_like(pix)
            if 0 <= row < pix.shape[0] and 0 <= col < pix.shape[1]:
                pix[row, col] = True
        on_change = float(np.mean(ids[pix] >= 0)) if pix.any() else 0.0
        cls = classes[i]
        if on_change >= COVER_MIN:
            tp += cls in ("mining", "clearing")
            on_all += 1
        else:
            fp += cls in ("mining", "clearing")
            false_by[ground_under(truth, pix)] += 1
            false_by_class[cls] += 1
        per_alert.append({"class": cls, "area_ha": float(alerts.iloc[i].get("area_ha", np.nan)),
                          "on_change": round(on_change, 3), "probability": float(alerts.iloc[i].get("probability", np.nan)),
                          "detection_path": alerts.iloc[i].get("detection_path")})
    return {
        "n_scars": len(per_scar),
        "n_found": len(found),
        "recall": round(len(found) / len(per_scar), 3) if per_scar else None,
        "n_alerts": n_alerts,
        "n_mining_clearing_alerts": tp + fp,
        "n_mining_clearing_on_change": tp,
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        # every alert issued counts here, `other` ones included: what a user receiving the file sees
        "n_alerts_on_change": on_all,
        "precision_all_classes": round(on_all / n_alerts, 3) if n_alerts else None,
        "class_accuracy": round(sum(p["predicted"] == p["class"] for p in found) / len(found), 3) if found else None,
        "mining_recall_as_mining": _share(per_scar, "mining"),
        "clearing_recall_as_clearing": _share(per_scar, "clearing"),
        "confusion": confusion,
        "false_alerts_by_ground": dict(false_by),
        "false_alerts_by_class": dict(false_by_class),
        "per_scar": per_scar,
        "per_alert": per_alert,
    }


def _share(per_scar, cls):
    rows = [p for p in per_scar if p["class"] == cls]
    return round(sum(p["predicted"] == cls for p in rows) / len(rows), 3) if rows else None


def write_config(run_dir: Path, encoding: str, regime: str, name: str) -> Path:
    landsat = encoding == "landsat"
    cfg = f"""name: {name}
areas:
  path: ../area.geojson
  id_field: area_id
  name_field: name
  buffer_m: 0
source:
  stac_catalog: catalog.json
  collections: [{'landsat-c2-l2' if landsat else 'sentinel-2-l2a'}]
  max_cloud_cover: 100
periods:
  baseline: [2021-01-01, 2021-12-31]
  monitor: [2022-01-01, 2022-12-31]
detection:
  resolution_m: {30 if landsat else 10}
model: {REPO / 'models' / 'scar-classifier.skops'}
output:
  dir: out
  formats: [geojson]
  evidence: false
  report: false
dask:
  n_workers: 1
  threads_per_worker: 2
  processes: false
"""
    path = run_dir / "config.yaml"
    path.write_text(cfg)
    return path


def run_one(scene, truth, meta, work: Path, encoding: str, regime: str, cec: str) -> dict:
    run_dir = work / f"{encoding}-{regime}"
    # a fresh folder: `cec run` keeps the alerts of earlier runs in the folder's state (and lists
    # them as `ongoing`), so a folder reused from another scene would score that scene's alerts
    shutil.rmtree(run_dir, ignore_errors=True)
    blind_scene.write_encoding(scene, encoding, regime, run_dir)
    config = write_config(run_dir, encoding, regime, f"blind-s{scene.seed}-{encoding}-{regime}")
    started = time.monotonic()
    proc = subprocess.run(["nice", "-n", "10", cec, "run", "--config", str(config), "--overwrite"],
                          capture_output=True, text=True, cwd=run_dir)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        return {"error": f"cec run exit {proc.returncode}: {proc.stderr[-2000:]}", "seconds": round(elapsed, 1)}
    return {"seconds": round(elapsed, 1), **score_run(run_dir, truth, meta, regime)}


def score_run(run_dir: Path, truth, meta, regime: str) -> dict:
    """Scores of a finished run's ``out/alerts.geojson``: every scar ≥ 0.5 ha (the default mapping
    unit), scars ≥ 1 ha (a `low` scar, all a two-composite run gives, must be twice the unit) and,
    for composites, the scars whose change shows in more than half of the monitor looks."""
    alerts_path = run_dir / "out" / "alerts.geojson"
    alerts = gpd.read_file(alerts_path) if alerts_path.is_file() else gpd.GeoDataFrame()
    if len(alerts) == 0:
        alerts = gpd.GeoDataFrame({"class": [], "probability": [], "area_ha": []}, geometry=[], crs=4326)
    out = {"all": score(alerts, truth, meta, 0.5), "scars_ge_1ha": score(alerts, truth, meta, 1.0)}
    if regime == "composites":
        out["visible_in_composite"] = score(alerts, truth, meta, 1.0, visible_only=True)
    return out


def pooled(sel: list[dict], part: str) -> dict:
    """Figures of ``part`` (``all``, ``scars_ge_1ha``, ``visible_in_composite``) pooled over runs."""
    n_scars = sum(r[part]["n_scars"] for r in sel)
    n_found = sum(r[part]["n_found"] for r in sel)
    conf = {c: Counter() for c in ("mining", "clearing")}
    for r in sel:
        for c in conf:
            conf[c].update(r[part]["confusion"][c])
    correct = conf["mining"]["mining"] + conf["clearing"]["clearing"]
    tp = sum(r[part]["n_mining_clearing_on_change"] for r in sel)
    mc = sum(r[part]["n_mining_clearing_alerts"] for r in sel)
    false, false_class = Counter(), Counter()
    for r in sel:
        false.update(r[part]["false_alerts_by_ground"])
        false_class.update(r[part]["false_alerts_by_class"])
    n_alerts = sum(r[part]["n_alerts"] for r in sel)
    on_all = sum(r[part].get("n_alerts_on_change", 0) for r in sel)
    return {"scars": n_scars, "recall": round(n_found / n_scars, 3) if n_scars else None,
            "precision": round(tp / mc, 3) if mc else None,
            "precision_all_classes": round(on_all / n_alerts, 3) if n_alerts else None,
            "class_accuracy": round(correct / n_found, 3) if n_found else None,
            "confusion": {c: dict(v) for c, v in conf.items()}, "false_alerts_by_ground": dict(false),
            "false_alerts_by_class": dict(false_class)}


def summarise(rows: list[dict]) -> dict:
    """Pooled figures per encoding and regime over seeds."""
    table = {}
    for key in sorted({(r["encoding"], r["regime"]) for r in rows}):
        sel = [r for r in rows if (r["encoding"], r["regime"]) == key and "all" in r]
        if not sel:
            continue
        entry = {"runs": len(sel), **pooled(sel, "all"), "scars_ge_1ha": pooled(sel, "scars_ge_1ha")}
        if all("visible_in_composite" in r for r in sel):
            entry["visible_in_composite_ge_1ha"] = pooled(sel, "visible_in_composite")
        entry["seconds_per_run"] = round(float(np.mean([r.get("seconds", np.nan) for r in sel])), 1)
        table[f"{key[0]}/{key[1]}"] = entry
    return table


def load_truth(folder: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, truth rasters) written by :func:`prepare_seed` in a seed's folder."""
    return json.loads((folder / "truth.json").read_text()), dict(np.load(folder / "truth.npz"))


def prepare_seed(seed: int, folder: Path, size_px: int):
    """Draw a seed's scene, write its truth and area into ``folder``; (scene, meta, truth)."""
    scene = blind_scene.make_scene(seed, size_px)
    blind_scene.write_truth(scene, folder)
    blind_scene.area_geojson(scene, folder / "area.geojson")
    return (scene, *load_truth(folder))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--encodings", nargs="+", default=list(blind_scene.ENCODINGS), choices=blind_scene.ENCODINGS)
    ap.add_argument("--regimes", nargs="+", default=list(blind_scene.REGIMES), choices=blind_scene.REGIMES)
    ap.add_argument("--size-px", type=int, default=600, help="scene edge at 10 m")
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "cec-blind")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results_blind.json")
    ap.add_argument("--cec", default=str(Path(sys.executable).with_name("cec")))
    ap.add_argument("--score-only", action="store_true",
                    help="score the runs already in --work again (no scene, no cec run); run times from --out")
    args = ap.parse_args(argv)
    rows = []
    if args.score_only:
        old = json.loads(args.out.read_text()) if args.out.is_file() else {"runs": []}
        seconds = {(r["seed"], r["encoding"], r["regime"]): r.get("seconds") for r in old["runs"]}
        for seed in args.seeds:
            work = args.work / f"seed{seed}"
            meta, truth = load_truth(work)
            for encoding in args.encodings:
                for regime in args.regimes:
                    res = {"seconds": seconds.get((seed, encoding, regime)),
                           **score_run(work / f"{encoding}-{regime}", truth, meta, regime)}
                    rows.append({**res, "seed": seed, "encoding": encoding, "regime": regime})
        return _write(args, argv, rows)
    for seed in args.seeds:
        work = args.work / f"seed{seed}"
        scene, meta, truth = prepare_seed(seed, work, args.size_px)
        for encoding in args.encodings:
            for regime in args.regimes:
                res = run_one(scene, truth, meta, work, encoding, regime, args.cec)
                res.update(seed=seed, encoding=encoding, regime=regime)
                rows.append(res)
                a = res.get("all", {})
                print(f"seed {seed} {encoding:18s} {regime:10s} {res['seconds']:6.1f}s recall {a.get('recall')} "
                      f"precision {a.get('precision')} class {a.get('class_accuracy')} "
                      f"confusion {a.get('confusion')} false {a.get('false_alerts_by_ground')} {res.get('error', '')}",
                      flush=True)
        del scene
    return _write(args, argv, rows)


def _write(args, argv, rows) -> int:
    model_card = json.loads((REPO / "models" / "scar-classifier.card.json").read_text())
    result = {
        "command": "python benchmarks/bench_blind.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model_sha256": model_card.get("sha256"),
        "cover_min": COVER_MIN,
        "summary": summarise(rows),
    }
    # per run: the figures of each part, the per-scar rows of `all` only (the other parts are
    # subsets of it); one run a line
    runs = []
    for r in rows:
        slim = {k: v for k, v in r.items() if not isinstance(v, dict)}
        for part in ("all", "scars_ge_1ha", "visible_in_composite"):
            if part in r:
                slim[part] = {k: v for k, v in r[part].items()
                              if k != "per_alert" and (k != "per_scar" or part == "all")}
        runs.append(slim)
    text = json.dumps(result, indent=1)[:-2] + ',\n "runs": [\n' + ",\n".join(json.dumps(r) for r in runs) + "\n ]\n}\n"
    json.loads(text)
    args.out.write_text(text)
    print(json.dumps(result["summary"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
