"""``cec train``: fit the scar classifier on labelled imagery or generated demo scenes."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
import typer
import yaml

from ..config import DaskConfig, load_config
from ..errors import ConfigError
from ..testing import scene
from ..training import train as training
from .common import DEFAULT_MODEL, DEMO_CONFIG, DEMO_DATA, RichReporter, app, console, dask_client, fail, setup_logging


@app.command()
def train(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Config naming the imagery (with --labels)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Reference polygons with a 'class' field, or an analyst verdict CSV (alert_id, verdict, reason, reviewer, comment[, class])."),
    alerts: Optional[Path] = typer.Option(None, "--alerts", help="With a verdict CSV: the alerts.geojson its alert_id values refer to."),
    out: Path = typer.Option(DEFAULT_MODEL, "--out", help="Model file to write (.skops; a .card.json goes beside it)."),
    scenes: int = typer.Option(4, "--scenes", help="Demo training scenes to generate (without --config)."),
    workers: Optional[int] = typer.Option(None, "--workers"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Train the scar classifier, on labelled imagery or (by default) on generated demo scenes.

    The default never trains on the demo scene itself: training scenes are other windows and
    seeds around La Pampa, so the demo remains an honest test.
    """
    setup_logging(verbose)
    try:
        if (config is None) != (labels is None):
            raise ConfigError("give --config and --labels together, or neither (demo training)")
        pairs = [(config, labels, config.stem)] if config is not None else demo_training_pairs(scenes)
        tables, data = [], []
        with dask_client(DaskConfig(n_workers=workers)):
            for cfg_path, labels_path, scene_name in pairs:
                cfg = load_config(cfg_path, {"model": str(out)})
                reference = training.read_labels(labels_path, alerts)
                tables.append(training.training_table(cfg, reference, scene_name, RichReporter()))
                data.append({"scene": scene_name, "config": str(cfg_path), "labels": str(labels_path)}
                            | ({"alerts": str(alerts)} if alerts is not None else {}))
        result = training.fit(pd.concat(tables, ignore_index=True))
        card = training.save_trained(result, out, data)
    except Exception as err:  # noqa: BLE001
        fail(err)
    console.print(f"saved {out} (sha256 {card['sha256'][:12]}…); samples {card['n_samples']}")
    cv = card["cv_metrics"]
    for name in card["classes"]:
        if name in cv:
            m = cv[name]
            console.print(f"  CV {name:9s} precision {m['precision']:.2f} recall {m['recall']:.2f} f1 {m['f1-score']:.2f}")


def demo_training_pairs(n: int) -> list[tuple[Path, Path, str]]:
    """Generate ``n`` training scenes around the demo window and write a config for each."""
    if not DEMO_CONFIG.is_file():
        raise ConfigError(f"{DEMO_CONFIG}: the demo config is missing; run from a clone of the repository")
    base = yaml.safe_load(DEMO_CONFIG.read_text())
    pairs = []
    for i, spec in enumerate(scene.training_specs(n)):
        folder = DEMO_DATA / "generated" / f"train-{i}"
        with RichReporter().stage(f"training scene {i} (seed {spec.seed})"):
            catalog = scene.ensure_scene(spec, folder, DEMO_DATA)
        raw = dict(base)
        raw["name"] = f"train-{i}"
        raw["areas"] = {**base["areas"], "path": str((DEMO_CONFIG.parent / base["areas"]["path"]).resolve()),
                        "buffer_zones": str((DEMO_CONFIG.parent / base["areas"]["buffer_zones"]).resolve())}
        raw["source"] = {**base["source"], "stac_catalog": str(catalog)}
        raw["output"] = {**base["output"], "dir": str(folder / "out")}
        raw["model"] = str(DEFAULT_MODEL)
        cfg_path = folder / "config.yaml"
        cfg_path.write_text(yaml.safe_dump(raw, sort_keys=False))
        pairs.append((cfg_path, folder / "truth.geojson", f"train-{i}"))
    return pairs
