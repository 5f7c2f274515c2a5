"""``cec train``: fit the scar classifier on labelled imagery or generated demo scenes."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
import typer
import yaml

from .. import bundled
from ..config import DaskConfig, load_config
from ..errors import ConfigError
from ..estimators import ESTIMATORS, EstimatorError, make_estimator
from ..testing import scene
from ..classify import calibrated_estimator
from ..files import sha256_of
from ..training import train as training
from ..training.domains import cross_domain_report
from ..training.sampler import SpectralLibrary, sample_table
from .common import QUIET, VERBOSE, DEFAULT_MODEL, DEMO_CONFIG, DEMO_DATA, ENDMEMBERS, RichReporter, app, console, dask_client, fail, setup_logging


TRAINED_MODEL = Path("models") / "scar-classifier-trained.skops"
"""Default ``--out``: beside the bundled model in a clone, never the bundled model itself."""


@app.command()
def train(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Config naming the imagery (with --labels)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Reference polygons with a 'class' field, or an analyst verdict CSV (alert_id, verdict, reason, reviewer, comment[, class])."),
    alerts: Optional[Path] = typer.Option(None, "--alerts", help="With a verdict CSV: the alerts.geojson its alert_id values refer to."),
    out: Path = typer.Option(TRAINED_MODEL, "--out", help="Model file to write (.skops; a .card.json goes beside it). "
                                                       "Never the bundled model unless --replace-bundled."),
    estimator: Optional[str] = typer.Option(
        None, "--estimator",
        help=f"Any scikit-learn classifier: {', '.join(ESTIMATORS)} or a sklearn.module.Class path (default: random_forest)."),
    param: list[str] = typer.Option([], "--param", help="Estimator parameter KEY=VALUE (YAML value), repeatable."),
    replace_bundled: bool = typer.Option(False, "--replace-bundled", help="Allow --out to be the bundled model."),
    per_class: int = typer.Option(400, "--per-class", min=10, max=5000, help="Sampled training scars per class (without --config)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the training sampler (without --config)."),
    check_scenes: int = typer.Option(3, "--check-scenes", min=0, max=8, help="Scenes of the project's own generator to validate on (never trained on; without --config)."),
    workers: Optional[int] = typer.Option(None, "--workers"),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Train the scar classifier, on labelled imagery or (by default) on sampled training scars.

    The default draws scars with randomised real spectra (``pipeline.training.sampler``, the
    endmember library ``data/endmembers/spectra.csv``), fits on them, and validates across
    domains (held-out seed, sensor, observation regime, library half, and ``--check-scenes``
    scenes of the project's own scene generator, which it never trains on); the figures go into
    the model card.
    """
    setup_logging(verbose, quiet)
    try:
        if out.resolve() == DEFAULT_MODEL.resolve() and not replace_bundled:
            raise ConfigError(f"--out {out} is the bundled model; pass --replace-bundled to overwrite it, "
                              "or write elsewhere and point `model:` at it")
        params = estimator_params(param)
        if estimator is not None:
            make_estimator(estimator, params)  # a bad name or parameter fails before any training
        elif params:
            raise ConfigError("--param needs --estimator")
        if (config is None) != (labels is None):
            raise ConfigError("give --config and --labels together, or neither (sampled training)")
        if config is not None:
            pairs = [(config, labels, config.stem)]
            tables, data = [], []
            with dask_client(DaskConfig(n_workers=workers)):
                for cfg_path, labels_path, scene_name in pairs:
                    cfg = load_config(cfg_path, {"model": str(out)})
                    reference = training.read_labels(labels_path, alerts)
                    tables.append(training.training_table(cfg, reference, scene_name, RichReporter()))
                    data.append({"scene": scene_name, "config": str(cfg_path), "labels": str(labels_path)}
                                | ({"alerts": str(alerts)} if alerts is not None else {}))
            result = training.fit(pd.concat(tables, ignore_index=True), estimator=estimator, params=params)
            card = training.save_trained(result, out, data)
        else:
            card = _train_sampled(out, per_class, seed, check_scenes, workers, estimator, params)
    except EstimatorError as err:
        fail(ConfigError(f"--estimator: {err}"))
    except Exception as err:  # noqa: BLE001
        fail(err)
    console.print(f"saved {out} (sha256 {card['sha256'][:12]}…); samples {card['n_samples']}", markup=False)
    for domain, figures in card.get("cross_domain", {}).items():
        console.print(f"  cross-domain {domain}: {figures}", markup=False)
    cv = card["cv_metrics"]
    for name in card["classes"]:
        if name in cv:
            m = cv[name]
            console.print(f"  CV {name:9s} precision {m['precision']:.2f} recall {m['recall']:.2f} f1 {m['f1-score']:.2f}", markup=False)


def _train_sampled(out: Path, per_class: int, seed: int, check_scenes: int, workers: int | None,
                   estimator: str | None, params: dict) -> dict:
    if not ENDMEMBERS.is_file():
        raise ConfigError(f"{ENDMEMBERS}: the endmember library is missing")
    with RichReporter().stage(f"sampling {per_class} training scars per class (seed {seed})"):
        table = sample_table(SpectralLibrary.from_csv(ENDMEMBERS), per_class, seed)
    with RichReporter().stage("fitting"):
        result = training.fit(table, seed, estimator=estimator, params=params)
    extra = {}
    if check_scenes:
        tables = []
        with dask_client(DaskConfig(n_workers=workers)):
            for cfg_path, labels_path, name in demo_training_pairs(check_scenes):
                cfg = load_config(cfg_path, {"model": str(out)})
                tables.append(training.training_table(cfg, training.read_labels(labels_path), name, RichReporter()))
        extra["demo_generator"] = pd.concat(tables, ignore_index=True)
    with RichReporter().stage("cross-domain validation"):
        report = cross_domain_report(lambda: calibrated_estimator(seed, estimator, params), table, ENDMEMBERS,
                                     max(per_class // 4, 20), seed, extra)
    command = f"cec train --per-class {per_class} --seed {seed} --check-scenes {check_scenes} --out {out}" + (
        " --replace-bundled" if Path(out).resolve() == DEFAULT_MODEL.resolve() else "")
    data = [{"scene": "sampler", "sampler": "pipeline.training.sampler", "per_class": per_class, "seed": seed,
             "library": "data/endmembers/spectra.csv", "library_sha256": sha256_of(ENDMEMBERS)}]
    if check_scenes:
        data.append({"scene": "demo_generator (validation only)", "n_scars": int(len(extra["demo_generator"]))})
    return training.save_trained(result, out, data, {"command": command, "cross_domain": report})


def estimator_params(pairs: list[str]) -> dict:
    """``KEY=VALUE`` strings -> parameters (values read as YAML: numbers, booleans, null, text)."""
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ConfigError(f"--param {pair!r}: expected KEY=VALUE")
        params[key] = yaml.safe_load(value)
    return params


def demo_training_pairs(n: int) -> list[tuple[Path, Path, str]]:
    """Generate ``n`` training scenes around the demo window and write a config for each."""
    if not DEMO_CONFIG.is_file():
        raise ConfigError(f"{DEMO_CONFIG}: the demo config is missing; run from a clone of the repository")
    base = yaml.safe_load(DEMO_CONFIG.read_text())
    pairs = []
    for i, spec in enumerate(scene.training_specs(n)):
        folder = bundled.generated_dir() / f"train-{i}"
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
