"""Run configuration: the YAML a user writes, validated with pydantic.

Every model forbids unknown keys, so a typo is an error that names the key instead of a
setting silently ignored. Paths in the file are relative to the file itself.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError

OutputFormat = Literal["geojson", "csv", "gpkg", "kml"]
Confidence = Literal["low", "nominal", "high"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AreasConfig(_Strict):
    path: Path = Field(description="Protected-area polygons (GeoJSON, GeoPackage or Shapefile).")
    id_field: str = Field("WDPAID", description="Attribute holding the area's identifier.")
    name_field: str = Field("NAME", description="Attribute holding the area's name.")
    buffer_zones: Path | None = Field(
        None, description="Official buffer-zone polygons; each is matched to its area by id_field."
    )
    buffer_m: float = Field(
        10000.0, ge=0, description="Width of a ring buffer when no buffer layer is given; 0 = none."
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
    timeout_s: float = Field(60.0, gt=0, description="STAC API request timeout, seconds.")
    retries: int = Field(
        5, ge=0, description="Retries of a failed STAC API request (timeouts, 429, 5xx), with backoff."
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
    min_area_ha: float = Field(0.5, gt=0, description="Minimum mapping unit of an alert, hectares.")
    resolution_m: float = Field(10.0, gt=0, description="Pixel size of the analysis grid, metres.")
    chunk_px: int = Field(512, ge=64, description="Dask chunk edge of the analysis grid, pixels.")
    forest_ndvi_min: float = Field(
        0.65, description="Baseline median NDVI at or above which a pixel counts as forest."
    )
    ndvi_drop_min: float = Field(
        0.2, gt=0, description="Smallest absolute NDVI drop from the baseline that can flag a look."
    )
    drop_sigma: float = Field(
        4.0, gt=0, description="A flagged drop must also exceed this many baseline robust std devs."
    )
    min_confidence: Confidence = Field(
        "low",
        description="Lowest confidence issued as an alert; `low` scars (one clear look so far) "
        "must also be twice min_area_ha.",
    )
    nodata_edge_m: float = Field(
        20.0, ge=0, description="Pixels this close to nodata (swath edges) are not trusted, metres."
    )
    cloud_buffer_m: float = Field(
        30.0, ge=0, description="Flagged clouds and shadows are grown by this distance, metres."
    )
    natural_loss: Literal["suppress", "other"] = Field(
        "suppress",
        description="Eroding river banks (natural loss, told by how the loss advanced from the "
        "water): not issued (`suppress`), or issued with class `other`.",
    )


class OutputConfig(_Strict):
    dir: Path = Field(description="Output folder.")
    formats: list[OutputFormat] = Field(
        default_factory=lambda: ["geojson", "csv"], description="Alert file formats."
    )
    evidence: bool = Field(
        True, description="Write an evidence bundle (chips, ficha técnica, manifest) per new or expanding alert."
    )
    report: bool = Field(True, description="Write report.html, a self-contained run report.")
    lang: Literal["es", "en"] = Field("es", description="Language of the ficha técnica and the report.")


class LifecycleConfig(_Strict):
    expanding_share: float = Field(
        0.2, ge=0, description="An alert is `expanding` when its area grew by more than this share since the last run."
    )
    match_overlap: float = Field(
        0.1, gt=0, le=1, description="A scar continues a stored alert when they overlap by this share of the smaller one."
    )
    lookback_days: int = Field(
        30, ge=0, description="An incremental run restarts this many days before the last processed date "
        "(late or reprocessed scenes)."
    )


class DaskConfig(_Strict):
    scheduler: str | None = Field(
        None, description="null = a LocalCluster on this machine; or tcp://host:8786."
    )
    n_workers: int | None = Field(None, ge=1, description="Workers of the LocalCluster.")
    threads_per_worker: int = Field(1, ge=1, description="Threads per LocalCluster worker.")


class OverlayConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$", description="Short name; alerts get a property overlay_<name>.")
    path: Path = Field(description="Vector layer (GeoJSON, GeoPackage, Shapefile) in any CRS.")
    name_field: str = Field("name", description="Attribute naming each feature (concession, community…).")


class RunConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Run name (output names, ids).")
    areas: AreasConfig
    source: SourceConfig
    periods: PeriodsConfig
    detection: DetectionConfig = Field(default_factory=DetectionConfig)
    model: Path = Field(description="Scar classifier (.skops) with its .card.json beside it.")
    output: OutputConfig
    dask: DaskConfig = Field(default_factory=DaskConfig)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    overlays: list[OverlayConfig] = Field(
        default_factory=list, description="Other layers whose features each alert touches (routing)."
    )


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
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    config = parse_config(raw, path)
    return apply_overrides(config, overrides or {})


def apply_overrides(config: RunConfig, overrides: dict) -> RunConfig:
    """Return a copy of ``config`` with dotted-key overrides applied (and re-validated)."""
    if not overrides:
        return config
    data = config.model_dump(mode="json")
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = str(Path(value).resolve()) if isinstance(value, Path) else value
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(Path("command line"), err)) from None
