"""Run configuration: the YAML a user writes, validated with pydantic.

Every model forbids unknown keys, so a typo is an error that names the key instead of a
setting silently ignored. Paths in the file are relative to the file itself.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .change import ChangeParams
from .bundled import bundled_model
from .errors import ConfigError
from .lifecycle import LifecycleParams
from .outputs.registry import alert_writers

Confidence = Literal["low", "nominal", "high"]


class _Strict(BaseModel):
    # Numbers are finite (no .nan/.inf from YAML) and every one has a range: a NaN threshold
    # would silently detect nothing and still advance the state.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class AreasConfig(_Strict):
    path: Path = Field(description="Protected-area polygons (GeoJSON, GeoPackage or Shapefile).")
    id_field: str = Field("WDPAID", description="Attribute holding the area's identifier.")
    name_field: str | None = Field(
        None, description="Attribute holding the area's name; when not given, NAME if the layer has it, "
        "else the id. A name_field the layer lacks is an error."
    )
    buffer_zones: Path | None = Field(
        None, description="Official buffer-zone polygons; each is matched to its area by id_field."
    )
    buffer_m: float = Field(
        10000.0, ge=0, le=100_000, description="Width of a ring buffer when no buffer layer is given; 0 = none."
    )


class SourceConfig(_Strict):
    stac_catalog: Path | None = Field(None, description="A local static STAC catalog.json.")
    stac_api: str | None = Field(None, description="A STAC API root URL, e.g. https://…/v1.")
    stac_items: Path | None = Field(
        None, description="A saved items.json (STAC ItemCollection) of an earlier run, to reproduce it."
    )
    collections: list[str] = Field(
        default_factory=lambda: ["sentinel-2-l2a"], min_length=1, description="Collection ids."
    )
    max_cloud_cover: float = Field(
        80.0, ge=0, le=100, description="Items with a larger eo:cloud_cover (%) are not used."
    )
    timeout_s: float = Field(60.0, gt=0, le=3600, description="STAC API request timeout, seconds.")
    retries: int = Field(
        5, ge=0, le=20, description="Retries of a failed STAC API request (timeouts, 429, 5xx), with backoff."
    )
    max_items: int = Field(
        10_000, ge=1, le=1_000_000,
        description="A STAC API search that returns more items than this (per area and period) is an error.",
    )
    deadline_s: float = Field(
        600.0, gt=0, le=86_400,
        description="A STAC API search still paging after this many seconds (per area and period) is an error.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> "SourceConfig":
        if sum(x is not None for x in (self.stac_catalog, self.stac_api, self.stac_items)) != 1:
            raise ValueError("give exactly one of source.stac_catalog, source.stac_api or source.stac_items")
        return self


class PeriodsConfig(_Strict):
    baseline: tuple[dt.date, dt.date] = Field(description="First and last day of the baseline.")
    monitor: tuple[dt.date, dt.date | None] = Field(
        description="First and last day of monitoring; a null last day means up to today "
        "(scheduled runs then pick up where the previous one ended)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> "PeriodsConfig":
        for name, (start, end) in (("baseline", self.baseline), ("monitor", self.monitor)):
            if end is not None and start > end:
                raise ValueError(f"periods.{name} starts ({start}) after it ends ({end})")
        if self.baseline[1] >= self.monitor[0]:
            raise ValueError(
                f"periods.baseline must end before periods.monitor starts "
                f"(baseline ends {self.baseline[1]}, monitor starts {self.monitor[0]})"
            )
        return self


class DetectionConfig(_Strict):
    min_area_ha: float = Field(0.5, gt=0, le=100_000, description="Minimum mapping unit of an alert, hectares.")
    resolution_m: float = Field(
        10.0, gt=0, le=1000, description="Pixel size of the analysis grid, metres (the grid is also bounded in "
        "pixels, see pipeline.detect.MAX_GRID_PX)."
    )
    chunk_px: int | None = Field(
        None, ge=64, le=8192,
        description="Edge of the square chunks of the analysis grid that each task reads and tests, pixels; "
                    "null = the largest up to 2048 whose task fits in its share of this machine's memory. "
                    "Results do not depend on it.")
    forest_ndvi_min: float = Field(
        0.65, ge=-1, le=1, description="Baseline median NDVI at or above which a pixel counts as forest."
    )
    ndvi_drop_min: float = Field(
        0.2, gt=0, le=2, description="Smallest absolute NDVI drop from the baseline that can flag a look."
    )
    drop_sigma: float = Field(
        4.0, gt=0, le=100, description="A flagged drop must also exceed this many baseline robust std devs."
    )
    min_confidence: Confidence = Field(
        "low",
        description="Lowest confidence issued as an alert; `low` scars (one clear look so far) "
        "must also be twice min_area_ha.",
    )
    nodata_edge_m: float = Field(
        20.0, ge=0, le=10_000, description="Pixels this close to nodata (swath edges) are not trusted, metres."
    )
    cloud_buffer_m: float = Field(
        30.0, ge=0, le=10_000, description="Flagged clouds and shadows are grown by this distance, metres."
    )
    natural_loss: Literal["suppress", "other"] = Field(
        "suppress",
        description="Natural change at the river's edge: eroding banks (told by how the loss "
        "advanced from the water) and scars of class `other` or `mining` lying mostly within 60 m "
        "of a river and holding no water of their own (bars buried by sand, slumping banks): not "
        "issued (`suppress`), or issued with class `other`.",
    )


class OutputConfig(_Strict):
    dir: Path = Field(description="Output folder.")
    formats: list[str] = Field(
        default_factory=lambda: ["geojson", "csv"],
        description="Alert file formats: any registered in pipeline.outputs (geojson, csv, gpkg, kml).",
    )
    evidence: bool = Field(
        True, description="Write an evidence bundle (chips, ficha técnica, manifest) per new or expanding alert."
    )
    report: bool = Field(True, description="Write report.html, a self-contained run report.")
    lang: Literal["es", "en"] = Field("es", description="Language of the ficha técnica and the report.")

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, formats: list[str]) -> list[str]:
        known = [w.format for w in alert_writers()]
        unknown = [f for f in formats if f not in known]
        if unknown:
            raise ValueError(f"unknown format(s) {', '.join(map(repr, unknown))}; expected one of {', '.join(known)}")
        return formats


class LifecycleConfig(_Strict):
    expanding_share: float = Field(
        0.2, ge=0, le=100, description="An alert is `expanding` when its area grew by more than this share since the last run."
    )
    match_overlap: float = Field(
        0.1, gt=0, le=1, description="A scar continues a stored alert when they overlap by this share of the smaller one."
    )
    lookback_days: int = Field(
        30, ge=0, le=3650, description="An incremental run restarts this many days before the last processed date "
        "(late or reprocessed scenes)."
    )


class DaskConfig(_Strict):
    scheduler: str | None = Field(
        None, description="null = a LocalCluster on this machine; or tcp://host:8786."
    )
    n_workers: int | None = Field(None, ge=1, le=256, description="Workers of the LocalCluster.")
    threads_per_worker: int = Field(1, ge=1, le=64, description="Threads per LocalCluster worker.")
    processes: bool | None = Field(
        None, description="LocalCluster workers as separate processes (true: a crash inside GDAL then takes one "
                          "worker, which dask restarts; each small task runs without waiting for the GIL) or "
                          "threads of the cec process (false: no worker start-up, no copies between processes; "
                          "the compiled kernels, GDAL and numpy release the GIL). null (the default): processes "
                          "when the run has at least 30 areas (many small areas), else threads.")
    connect_timeout_s: float = Field(
        15.0, gt=0, le=600, description="Seconds to wait for dask.scheduler to answer before failing (exit 2)."
    )


AUTO_PROCESSES_MIN_AREAS = 30
"""From this many areas ``dask.processes: null`` starts worker processes. Measured on 2 cores
(``benchmarks/bench_scale.py --areas 115``): one small area costs 0.26 s more with threaded
workers, whose small tasks are mostly Python under one GIL, and 0.14 s with worker processes,
which take about 3.6 s longer to start; so processes pay from about 30 areas."""


def worker_processes(dask_config: DaskConfig, n_areas: int) -> bool:
    """Whether the LocalCluster of a run over ``n_areas`` areas has worker processes."""
    if dask_config.processes is not None:
        return dask_config.processes
    return n_areas >= AUTO_PROCESSES_MIN_AREAS


def local_workers(dask_config: DaskConfig) -> int:
    """Workers of the LocalCluster ``cec run`` starts when no scheduler is given."""
    import os

    return dask_config.n_workers or max(1, min(4, os.cpu_count() or 1))


class OverlayConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$", description="Short name; alerts get a property overlay_<name>.")
    path: Path = Field(description="Vector layer (GeoJSON, GeoPackage, Shapefile) in any CRS.")
    name_field: str = Field("name", description="Attribute naming each feature (concession, community…).")


class EmailConfig(_Strict):
    smtp_host: str = Field(description="SMTP server host name.")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP server port.")
    sender: str = Field(description="From address.")
    to: list[str] = Field(min_length=1, description="Recipients.")
    starttls: bool = Field(False, description="Upgrade the connection with STARTTLS before sending.")
    username: str | None = Field(None, description="SMTP login (the password only from the environment).")
    password_env: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the environment variable holding the SMTP password (never in the file).",
    )


class NotifyConfig(_Strict):
    webhooks: list[str] = Field(
        default_factory=list,
        description="URLs (http/https) that get a POST of the run's JSON summary when it has new or expanding alerts.",
    )
    email: EmailConfig | None = Field(None, description="E-mail the summary with the new alerts attached.")
    timeout_s: float = Field(10.0, gt=0, le=300, description="Deadline of each notification, seconds.")

    @field_validator("webhooks")
    @classmethod
    def _http_only(cls, urls: list[str]) -> list[str]:
        bad = [u for u in urls if not u.lower().startswith(("http://", "https://"))]
        if bad:
            raise ValueError(f"webhooks must be http(s) URLs: {', '.join(bad)}")
        return urls


class ClassifyConfig(_Strict):
    thresholds: dict[Literal["mining", "clearing", "other"], float] = Field(
        default_factory=dict,
        description="Per-class decision thresholds (0–1): a class is chosen only where its probability "
                    "reaches its threshold; a scar where no class qualifies is 'other'.",
    )

    @field_validator("thresholds")
    @classmethod
    def _unit_interval(cls, thresholds: dict) -> dict:
        for name, value in thresholds.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: {value} is not between 0 and 1")
        return thresholds


class RunConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                      description="Run name (output names, alert ids): letters, digits, '_.-', starting with a "
                      "letter or digit, at most 64 characters.")
    areas: AreasConfig
    source: SourceConfig
    periods: PeriodsConfig
    detection: DetectionConfig = Field(default_factory=DetectionConfig)
    model: Path = Field(
        default_factory=bundled_model,
        description="Scar classifier (.skops) with its .card.json beside it; default: the bundled model.",
    )
    classify: ClassifyConfig = Field(default_factory=ClassifyConfig)
    output: OutputConfig
    dask: DaskConfig = Field(default_factory=DaskConfig)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    overlays: list[OverlayConfig] = Field(
        default_factory=list, description="Other layers whose features each alert touches (routing)."
    )
    notify: NotifyConfig = Field(default_factory=NotifyConfig)


class DatesAsText(yaml.SafeLoader):
    """YAML's safe loader with dates left as text, so that pydantic validates them and names
    the key of an impossible one (``periods.baseline.1: 2018-06-31``) instead of PyYAML
    raising a bare ``day is out of range for month``."""


DatesAsText.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _format_validation_error(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid configuration"]
    for item in err.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key")
        elif item["type"] == "missing":
            lines.append(f"  {key}: required key is missing")
        else:
            lines.append(f"  {key}: {item['msg']}")
    return "\n".join(lines)


def _resolve_paths(raw: dict, base: Path) -> dict:
    """Make the file paths of a raw config dict absolute, relative to ``base``."""
    def absolute(value):
        return str((base / value).resolve()) if isinstance(value, str) else value

    raw = dict(raw)
    for section, keys in (("areas", ("path", "buffer_zones")), ("source", ("stac_catalog", "stac_items")),
                          ("output", ("dir",))):
        if isinstance(raw.get(section), dict):
            raw[section] = {
                k: (absolute(v) if k in keys and v is not None else v)
                for k, v in raw[section].items()
            }
    if isinstance(raw.get("model"), str):
        raw["model"] = absolute(raw["model"])
    if isinstance(raw.get("overlays"), list):
        raw["overlays"] = [{**o, "path": absolute(o["path"])} if isinstance(o, dict) and isinstance(o.get("path"), str)
                           else o for o in raw["overlays"]]
    return raw


def parse_config(raw: object, source: Path) -> RunConfig:
    """Validate an already-parsed YAML mapping; paths resolve relative to ``source``'s folder."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a YAML mapping of keys at the top level")
    try:
        return RunConfig.model_validate(_resolve_paths(raw, source.resolve().parent))
    except ValidationError as err:
        raise ConfigError(_format_validation_error(source, err)) from None


def load_config(path: Path, overrides: dict | None = None) -> RunConfig:
    """Read, validate and resolve a run config.

    Parameters
    ----------
    path
        The YAML file.
    overrides
        Dotted keys set from the command line (``{"output.dir": "/tmp/x"}``); they win over
        the file. Paths given here are taken relative to the current directory.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=DatesAsText)  # noqa: S506 - a SafeLoader
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    config = parse_config(raw, path)
    return apply_overrides(config, overrides or {})


def set_keys(raw: dict, changes: dict) -> dict:
    """A copy of a raw config mapping with dotted keys set (``{"output.dir": "/tmp/x"}``);
    a None value removes the key. Nothing is validated here."""
    raw = copy.deepcopy(raw)
    for dotted, value in changes.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return raw


def apply_overrides(config: RunConfig, overrides: dict) -> RunConfig:
    """Return a copy of ``config`` with dotted-key overrides applied (and re-validated).

    A None value means "not given" (a command-line flag left out) and changes nothing; paths
    are resolved against the current directory.
    """
    given = {k: str(Path(v).resolve()) if isinstance(v, Path) else v for k, v in overrides.items() if v is not None}
    if not given:
        return config
    try:
        return RunConfig.model_validate(set_keys(config.model_dump(mode="json"), given))
    except ValidationError as err:
        raise ConfigError(_format_validation_error(Path("command line"), err)) from None


def change_params(detection: DetectionConfig) -> ChangeParams:
    """Change-test thresholds from the ``detection`` section."""
    return ChangeParams(forest_ndvi_min=detection.forest_ndvi_min, ndvi_drop_min=detection.ndvi_drop_min,
                        drop_sigma=detection.drop_sigma)


def lifecycle_params(lifecycle: LifecycleConfig) -> LifecycleParams:
    """Alert matching and expansion rules from the ``lifecycle`` section."""
    return LifecycleParams(lifecycle.expanding_share, lifecycle.match_overlap)
