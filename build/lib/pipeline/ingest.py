"""Imagery ingest: find STAC items, check them, load them as a dask-backed reflectance cube.

The one path for every source: a local static catalog, a STAC API and a saved
``items.json`` give ``pystac.Item`` objects; a :class:`CollectionProfile` maps the item's
asset keys to the common band names (``blue green red nir swir16 swir22`` and a mask band),
and says how to turn digital numbers into surface reflectance when the item carries no
``raster:bands`` scale/offset. The core of the pipeline never sees a source-specific band name.

Profiles
--------
* Earth Search v1 ``sentinel-2-l2a`` / ``sentinel-2-c1-l2a``: keys ``blue … swir22 scl``.
  Items carry ``raster:bands`` scale 1e-4, offset −0.1 (``earthsearch:boa_offset_applied``:
  the DN already holds the +1000 of processing baseline 04.00, also for older baselines).
* Planetary Computer ``sentinel-2-l2a``: keys ``B02 B03 B04 B08 B11 B12 SCL``; raw DN without
  ``raster:bands``: reflectance = DN × 1e-4, minus 0.1 from processing baseline 04.00 on
  (decided by ``s2:processing_baseline``, never by date). Hrefs are signed at read time.
* ``landsat-c2-l2`` (Earth Search and Planetary Computer): keys
  ``blue green red nir08 swir16 swir22 qa_pixel``; reflectance = DN × 2.75e-5 − 0.2, fill 0.

``raster:bands`` scale/offset win when present, and then nothing else is added: an offset is
never applied twice. :func:`check_reflectance` refuses looks whose reflectance is massively
negative, the symptom of a doubled offset.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pystac
import rasterio
import xarray as xr
from odc.geo.geobox import GeoBox

from .errors import InputError, NoItemsError
from .files import write_text_atomic

log = logging.getLogger(__name__)

REFLECTANCE_BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")

S2_BOA_OFFSET_BASELINE = (4, 0)
"""Sentinel-2 processing baseline from which L2A DN carry a +1000 offset (25 Jan 2022)."""
S2_BOA_OFFSET = -0.1
"""Reflectance offset of baseline ≥ 04.00 products (−1000 DN × 1e-4)."""


@dataclass(frozen=True)
class CollectionProfile:
    """How one source's items map to the pipeline's common bands."""

    name: str
    """Profile name, e.g. ``earth-search-s2``."""
    collections: tuple[str, ...]
    """Collection ids this profile can serve."""
    sensor: str
    """Sensor family: ``sentinel-2`` or ``landsat``."""
    assets: dict[str, str]
    """Common band name -> asset key, for the six reflectance bands."""
    mask_band: str | None
    """Common name of the mask band (``scl`` or ``qa_pixel``), or None for composites."""
    mask_asset: str | None
    """Asset key of the mask band (optional on an item: composites carry none)."""
    scale: float
    """DN scale used when an asset has no ``raster:bands`` scale."""
    offset: float
    """Reflectance offset used when an asset has no ``raster:bands`` offset."""
    nodata: int = 0
    """Digital number that marks missing data."""
    signature_asset: str = ""
    """An asset key whose presence identifies this profile among same-named collections."""
    offset_rule: str = "fixed"
    """``fixed`` (use ``offset``) or ``s2-baseline`` (−0.1 from baseline 04.00 on, else 0)."""

    def asset_keys(self) -> dict[str, str]:
        """Common name -> asset key, mask included."""
        keys = dict(self.assets)
        if self.mask_band and self.mask_asset:
            keys[self.mask_band] = self.mask_asset
        return keys


EARTH_SEARCH_S2 = CollectionProfile(
    name="earth-search-s2",
    collections=("sentinel-2-l2a", "sentinel-2-c1-l2a"),
    sensor="sentinel-2",
    assets={b: b for b in REFLECTANCE_BANDS},
    mask_band="scl",
    mask_asset="scl",
    scale=1e-4,
    offset=-0.1,
    signature_asset="swir16",
)

PLANETARY_COMPUTER_S2 = CollectionProfile(
    name="planetary-computer-s2",
    collections=("sentinel-2-l2a",),
    sensor="sentinel-2",
    assets={"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11", "swir22": "B12"},
    mask_band="scl",
    mask_asset="SCL",
    scale=1e-4,
    offset=S2_BOA_OFFSET,
    signature_asset="B11",
    offset_rule="s2-baseline",
)

LANDSAT_C2_L2 = CollectionProfile(
    name="landsat-c2-l2",
    collections=("landsat-c2-l2",),
    sensor="landsat",
    assets={"blue": "blue", "green": "green", "red": "red", "nir": "nir08", "swir16": "swir16",
            "swir22": "swir22"},
    mask_band="qa_pixel",
    mask_asset="qa_pixel",
    scale=2.75e-5,
    offset=-0.2,
    signature_asset="nir08",
)

PROFILES: tuple[CollectionProfile, ...] = (EARTH_SEARCH_S2, PLANETARY_COMPUTER_S2, LANDSAT_C2_L2)


def resolve_profile(item: pystac.Item) -> CollectionProfile:
    """Pick the profile for an item from its collection id and asset keys."""
    for profile in PROFILES:
        if item.collection_id in profile.collections and profile.signature_asset in item.assets:
            return profile
    raise InputError(
        f"item {item.id}: no collection profile for collection {item.collection_id!r} "
        f"with assets {sorted(item.assets)}"
    )


def has_mask(item: pystac.Item, profile: CollectionProfile | None = None) -> bool:
    """Whether the item carries its profile's mask asset (composites do not)."""
    profile = profile or resolve_profile(item)
    return bool(profile.mask_asset) and profile.mask_asset in item.assets


def _baseline(item: pystac.Item) -> tuple[int, int] | None:
    raw = item.properties.get("s2:processing_baseline")
    if raw is None:
        return None
    try:
        major, minor = str(raw).split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        raise InputError(f"item {item.id}: unreadable s2:processing_baseline {raw!r}") from None


def resolve_scale_offset(item: pystac.Item, asset_key: str, profile: CollectionProfile) -> tuple[float, float]:
    """Scale and offset that turn the asset's DN into surface reflectance (unitless).

    ``raster:bands`` on the asset wins and is used alone; otherwise the profile decides,
    for Planetary Computer Sentinel-2 from ``s2:processing_baseline`` (≥ 04.00: −0.1, else 0).
    Exactly one offset is ever applied.
    """
    bands = item.assets[asset_key].extra_fields.get("raster:bands") or [{}]
    first = bands[0]
    if "scale" in first or "offset" in first:
        return float(first.get("scale", 1.0)), float(first.get("offset", 0.0))
    if profile.offset_rule == "s2-baseline":
        baseline = _baseline(item)
        if baseline is None:
            raise InputError(
                f"item {item.id}: Sentinel-2 item without raster:bands needs s2:processing_baseline "
                "to decide the −1000 DN offset"
            )
        return profile.scale, (S2_BOA_OFFSET if baseline >= S2_BOA_OFFSET_BASELINE else 0.0)
    return profile.scale, profile.offset


def platform_of(item: pystac.Item, profile: CollectionProfile) -> str:
    """Platform name, lower case (``sentinel-2a``, ``landsat-8``): PC and Earth Search differ in case."""
    return str(item.properties.get("platform", profile.sensor)).lower()


# --- finding items -----------------------------------------------------------------------


def _item_datetime(item: pystac.Item) -> dt.datetime:
    return item.datetime or dt.datetime.fromisoformat(str(item.properties["start_datetime"]))


def _in_window(item: pystac.Item, start: dt.date, end: dt.date) -> bool:
    return start <= _item_datetime(item).date() <= end


def _sort_key(item: pystac.Item):
    return (_item_datetime(item).replace(tzinfo=None), item.id)


def filter_items(
    items: Iterable[pystac.Item],
    collections: Sequence[str],
    intersects: dict,
    start: dt.date,
    end: dt.date,
    max_cloud_cover: float,
) -> list[pystac.Item]:
    """Items that match collections, place (lon/lat GeoJSON), dates (inclusive) and cloud cover (%)."""
    import shapely.geometry

    area = shapely.geometry.shape(intersects)
    found = []
    for item in items:
        if item.collection_id not in collections:
            continue
        if item.geometry is None or not shapely.geometry.shape(item.geometry).intersects(area):
            continue
        if not _in_window(item, start, end):
            continue
        if float(item.properties.get("eo:cloud_cover", 0.0)) > max_cloud_cover:
            continue
        found.append(item)
    return sorted(found, key=_sort_key)


def search_catalog(
    catalog_path: Path,
    collections: Sequence[str],
    intersects: dict,
    start: dt.date,
    end: dt.date,
    max_cloud_cover: float,
) -> list[pystac.Item]:
    """Items of a local static catalog that match collections, place, dates and cloud cover."""
    catalog_path = Path(catalog_path)
    if not catalog_path.is_file():
        raise InputError(f"{catalog_path}: STAC catalog not found")
    try:
        catalog = pystac.Catalog.from_file(str(catalog_path))
        items = list(catalog.get_items(recursive=True))
    except Exception as err:  # pystac raises many types for broken JSON or links
        raise InputError(f"{catalog_path}: cannot read STAC catalog: {err}") from None
    return filter_items(items, collections, intersects, start, end, max_cloud_cover)


def read_item_collection(path: Path) -> list[pystac.Item]:
    """Items of a saved ``items.json`` (an ItemCollection, as a run writes it); hrefs as stored."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: STAC item collection not found")
    try:
        return list(pystac.ItemCollection.from_file(str(path)))
    except Exception as err:
        raise InputError(f"{path}: cannot read STAC item collection: {err}") from None


def search_items_file(
    path: Path,
    collections: Sequence[str],
    intersects: dict,
    start: dt.date,
    end: dt.date,
    max_cloud_cover: float,
) -> list[pystac.Item]:
    """Items of a saved ``items.json`` that match, to reproduce a run offline."""
    return filter_items(read_item_collection(path), collections, intersects, start, end, max_cloud_cover)


@dataclass(frozen=True)
class ApiOptions:
    """Network behaviour of STAC API searches."""

    timeout_s: float = 60.0
    """Connect and read timeout of each request, seconds."""
    retries: int = 5
    """Retries of a failed request (timeouts, connection errors, 429 and 5xx)."""
    backoff_s: float = 1.0
    """Backoff factor: waits of backoff × 2^n seconds between retries."""
    page_size: int = 100
    """Items per page asked of the server."""


def _stac_io(options: ApiOptions):
    from pystac_client.stac_api_io import StacApiIO
    from urllib3.util.retry import Retry

    retry = Retry(
        total=options.retries,
        connect=options.retries,
        read=options.retries,
        status=options.retries,
        backoff_factor=options.backoff_s,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "POST"}),  # STAC search POST is idempotent
        raise_on_status=False,
    )
    return StacApiIO(timeout=options.timeout_s, max_retries=retry)


def search_api(
    url: str,
    collections: Sequence[str],
    intersects: dict,
    start: dt.date,
    end: dt.date,
    max_cloud_cover: float,
    options: ApiOptions | None = None,
) -> list[pystac.Item]:
    """Items from a STAC API (pystac-client): by geometry, date window and ``eo:cloud_cover``, paged.

    Requests time out after ``options.timeout_s`` and are retried with exponential backoff.
    Hrefs are returned as the server gives them: Planetary Computer hrefs are signed only
    at read time (:func:`href_patcher`), so nothing signed is ever stored.
    """
    import requests
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    options = options or ApiOptions()
    try:
        client = Client.open(url, stac_io=_stac_io(options), timeout=options.timeout_s)
        search = client.search(
            collections=list(collections),
            intersects=intersects,
            datetime=f"{start.isoformat()}/{end.isoformat()}",
            query={"eo:cloud_cover": {"lte": max_cloud_cover}},
            limit=options.page_size,
        )
        items = list(search.items())
    except (APIError, requests.RequestException) as err:
        raise InputError(f"{url}: STAC API search failed: {err}") from None
    # Servers without the query extension ignore it: filter again (also dates and place).
    return filter_items(items, collections, intersects, start, end, max_cloud_cover)


def write_items(items: Sequence[pystac.Item], path: Path) -> Path:
    """Save the items a run used as a STAC ItemCollection (atomically), with absolute hrefs.

    Hrefs are stored unsigned, as found, so the file holds no credentials and can be used
    with ``source.stac_items`` to reproduce the run.
    """
    features = []
    for item in items:
        clone = item.clone()
        for asset in clone.assets.values():
            asset.href = asset.get_absolute_href() or asset.href
        clone.clear_links()
        features.append(clone.to_dict(include_self_link=False, transform_hrefs=False))
    collection = {"type": "FeatureCollection", "features": features}
    return write_text_atomic(Path(path), json.dumps(collection, indent=1) + "\n")


def href_patcher(items: Iterable[pystac.Item]) -> Callable[[str], str] | None:
    """A read-time href signer for Planetary Computer assets, or None when no item needs one."""
    for item in items:
        for asset in item.assets.values():
            host = urlparse(asset.href).netloc
            if host.endswith(".blob.core.windows.net"):
                import planetary_computer

                return planetary_computer.sign
    return None


# --- checking items ----------------------------------------------------------------------


@dataclass
class ItemCheck:
    """Items that can be read, and the ones skipped with the reason."""

    usable: list[pystac.Item] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)


def _local_path(href: str) -> Path | None:
    parsed = urlparse(href)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path)
    return None


def check_items(items: Iterable[pystac.Item]) -> ItemCheck:
    """Open the header of every local asset; an item with a missing or corrupt asset is skipped.

    The mask asset is optional (composites carry none). Remote assets are not probed (that
    would cost a request each); odc-stac reports them at load time instead.
    """
    result = ItemCheck()
    for item in items:
        try:
            profile = resolve_profile(item)
            keys = profile.asset_keys()
            if not has_mask(item, profile):
                keys.pop(profile.mask_band or "", None)
            for band, key in keys.items():
                if key not in item.assets:
                    raise InputError(f"asset {key!r} ({band}) missing")
                if band in profile.assets:
                    resolve_scale_offset(item, key, profile)
                path = _local_path(item.assets[key].get_absolute_href() or "")
                if path is None:
                    continue
                if not path.is_file():
                    raise InputError(f"asset {key!r}: file not found: {path}")
                try:
                    with rasterio.open(path) as src:
                        src.profile  # noqa: B018 - reading the header is the check
                except rasterio.RasterioIOError as err:
                    raise InputError(f"asset {key!r}: unreadable file {path}: {err}") from None
        except InputError as err:
            log.warning("skipping item %s: %s", item.id, err)
            result.skipped.append({"item": item.id, "reason": str(err)})
            continue
        result.usable.append(item)
    return result


# --- loading -----------------------------------------------------------------------------


def solar_day(item: pystac.Item) -> str:
    """Local solar date of an acquisition: same-day tiles of one pass form one observation."""
    import shapely.geometry

    lon = shapely.geometry.shape(item.geometry).centroid.x if item.geometry else 0.0
    return (_item_datetime(item) + dt.timedelta(hours=lon / 15.0)).date().isoformat()


@dataclass(frozen=True)
class Observations:
    """A loaded reflectance cube and what it was made from."""

    data: xr.Dataset
    """Dims (time, y, x); float32 reflectance bands (NaN = nodata) and the uint8/uint16 mask band."""
    items_by_time: tuple[tuple[str, ...], ...]
    """STAC item ids of each time step."""
    sensors_by_time: tuple[str, ...]
    """Platform of each time step (e.g. ``sentinel-2a``)."""


def make_geobox(bounds_utm: tuple[float, float, float, float], epsg: int, resolution_m: float) -> GeoBox:
    """Pixel grid over ``bounds_utm`` (xmin, ymin, xmax, ymax) snapped to multiples of the resolution."""
    xmin, ymin, xmax, ymax = bounds_utm
    r = resolution_m
    xmin, ymin = np.floor(xmin / r) * r, np.floor(ymin / r) * r
    xmax, ymax = np.ceil(xmax / r) * r, np.ceil(ymax / r) * r
    return GeoBox.from_bbox((xmin, ymin, xmax, ymax), crs=f"EPSG:{epsg}", resolution=r)


def partition_items(items: Sequence[pystac.Item]) -> list[list[pystac.Item]]:
    """Split items into groups loadable together: one profile, all with or all without a mask.

    Groups come in a stable order (profile name, then mask first).
    """
    groups: dict[tuple[str, bool], list[pystac.Item]] = {}
    for item in items:
        profile = resolve_profile(item)
        groups.setdefault((profile.name, not has_mask(item, profile)), []).append(item)
    return [groups[key] for key in sorted(groups)]


def load_observations(
    items: Sequence[pystac.Item],
    geobox: GeoBox,
    chunk_px: int,
    patch_url: Callable[[str], str] | None = None,
) -> Observations:
    """Load items of one profile onto ``geobox`` as a lazy (dask) reflectance cube.

    Same-solar-day items are mosaicked into one time step (odc-stac reprojects every tile,
    whatever its MGRS tile or UTM zone, onto the grid). Reflectance = DN × scale + offset per
    item and band (``raster:bands`` first, else the profile); DN equal to nodata → NaN. The
    mask band is loaded when every item has it (see :func:`partition_items` for mixed input).
    ``patch_url`` signs hrefs at read time (Planetary Computer).
    """
    import odc.stac

    if not items:
        raise NoItemsError("no items to load")
    profiles = {resolve_profile(item).name: resolve_profile(item) for item in items}
    if len(profiles) != 1:
        raise InputError(
            f"one load takes one source profile, got {sorted(profiles)}: split with partition_items"
        )
    profile = next(iter(profiles.values()))
    masked = {has_mask(item, profile) for item in items}
    if len(masked) != 1:
        raise InputError("one load takes items all with or all without a mask band: split with partition_items")
    keys = profile.asset_keys() if masked.pop() else dict(profile.assets)

    groups: dict[str, list[pystac.Item]] = {}
    for item in items:
        groups.setdefault(solar_day(item), []).append(item)
    days = sorted(groups)

    resampling = {key: "bilinear" for key in profile.assets.values()}
    if profile.mask_asset:
        resampling[profile.mask_asset] = "nearest"
    raw = odc.stac.load(
        items,
        bands=list(keys.values()),
        geobox=geobox,
        chunks={"time": 1, "y": chunk_px, "x": chunk_px},
        groupby=lambda item, parsed, idx: solar_day(item),
        resampling={k: v for k, v in resampling.items() if k in keys.values()},
        patch_url=patch_url,
        fail_on_error=True,
    )
    if raw.sizes["time"] != len(days):
        raise InputError(f"expected {len(days)} observations after grouping, odc-stac gave {raw.sizes['time']}")

    out = {}
    for band, key in profile.assets.items():
        scale_offset = np.array([resolve_scale_offset(groups[d][0], key, profile) for d in days], dtype="float64")
        scale = xr.DataArray(scale_offset[:, 0].astype("float32"), dims="time")
        offset = xr.DataArray(scale_offset[:, 1].astype("float32"), dims="time")
        dn = raw[key]
        out[band] = (dn.astype("float32") * scale + offset).where(dn != profile.nodata)
    if profile.mask_band in keys:
        out[profile.mask_band] = raw[profile.mask_asset]
    data = xr.Dataset(out, coords={"time": raw.time, "y": raw.y, "x": raw.x})
    data.attrs.update(crs=str(geobox.crs), sensor=profile.sensor,
                      mask_band=profile.mask_band if profile.mask_band in keys else "")
    return Observations(
        data=data,
        items_by_time=tuple(tuple(i.id for i in groups[d]) for d in days),
        sensors_by_time=tuple(platform_of(groups[d][0], profile) for d in days),
    )


NEGATIVE_REFLECTANCE = -0.05
"""Reflectance below this is implausible for land (noise and water reach about −0.02)."""
MAX_NEGATIVE_FRACTION = 0.2
"""A look with more of its valid pixels below ``NEGATIVE_REFLECTANCE`` is refused."""


def negative_fraction(data: xr.Dataset, clear: xr.DataArray | None = None) -> xr.DataArray:
    """Per time step: the fraction of valid (and clear) pixels whose darkest visible band is below −0.05.

    Clouds are bright and hide a wrong offset, hence ``clear`` (boolean, time × y × x) when
    known. Lazy (dask) when ``data`` is; compute it with the rest to read the pixels once.
    """
    darkest = np.fmin(np.fmin(data["blue"], data["green"]), data["red"])
    valid = darkest.notnull() if clear is None else darkest.notnull() & clear
    negative = (darkest < NEGATIVE_REFLECTANCE) & valid
    return (negative.sum(("y", "x")) / valid.sum(("y", "x")).clip(min=1)).rename("negative_fraction")


def check_reflectance(fractions: Sequence[float], items_by_time: Sequence[Sequence[str]]) -> None:
    """Refuse massively negative reflectance (a doubled or wrong offset); the error names the items."""
    bad = [(list(ids), float(f)) for f, ids in zip(fractions, items_by_time) if f > MAX_NEGATIVE_FRACTION]
    if bad:
        detail = "; ".join(f"items {ids}: {100 * f:.0f}% of pixels below {NEGATIVE_REFLECTANCE}" for ids, f in bad)
        raise InputError(
            f"reflectance is massively negative (offset applied twice or wrong scale/offset?): {detail}"
        )
