"""Imagery ingest: find STAC items, check them, load them as a dask-backed reflectance cube.

The one path for every source: a local static catalog and a STAC API give ``pystac.Item``
objects; a :class:`CollectionProfile` maps the item's asset keys to the common band names
(``blue green red nir swir16 swir22`` and a mask band), and says how to turn digital numbers
into surface reflectance when the item carries no ``raster:bands`` scale/offset. The core
of the pipeline never sees a source-specific band name.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pystac
import rasterio
import xarray as xr
from odc.geo.geobox import GeoBox

from .errors import InputError, NoItemsError

log = logging.getLogger(__name__)

REFLECTANCE_BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")


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
    """Asset key of the mask band."""
    scale: float
    """DN scale used when an asset has no ``raster:bands`` scale."""
    offset: float
    """Reflectance offset used when an asset has no ``raster:bands`` offset."""
    nodata: int = 0
    """Digital number that marks missing data."""
    signature_asset: str = ""
    """An asset key whose presence identifies this profile among same-named collections."""

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

PROFILES: tuple[CollectionProfile, ...] = (EARTH_SEARCH_S2,)


def resolve_profile(item: pystac.Item) -> CollectionProfile:
    """Pick the profile for an item from its collection id and asset keys."""
    for profile in PROFILES:
        if item.collection_id in profile.collections and profile.signature_asset in item.assets:
            return profile
    raise InputError(
        f"item {item.id}: no collection profile for collection {item.collection_id!r} "
        f"with assets {sorted(item.assets)}"
    )


def resolve_scale_offset(item: pystac.Item, asset_key: str, profile: CollectionProfile) -> tuple[float, float]:
    """Scale and offset that turn the asset's DN into reflectance.

    ``raster:bands`` on the asset wins; otherwise the profile's defaults apply. Never both.
    """
    bands = item.assets[asset_key].extra_fields.get("raster:bands") or [{}]
    first = bands[0]
    return float(first.get("scale", profile.scale)), float(first.get("offset", profile.offset))


# --- finding items -----------------------------------------------------------------------


def _in_window(item: pystac.Item, start: dt.date, end: dt.date) -> bool:
    when = item.datetime or dt.datetime.fromisoformat(str(item.properties["start_datetime"]))
    return start <= when.date() <= end


def search_catalog(
    catalog_path: Path,
    collections: Sequence[str],
    intersects: dict,
    start: dt.date,
    end: dt.date,
    max_cloud_cover: float,
) -> list[pystac.Item]:
    """Items of a local static catalog that match collections, place, dates and cloud cover."""
    import shapely.geometry

    catalog_path = Path(catalog_path)
    if not catalog_path.is_file():
        raise InputError(f"{catalog_path}: STAC catalog not found")
    try:
        catalog = pystac.Catalog.from_file(str(catalog_path))
        items = list(catalog.get_items(recursive=True))
    except Exception as err:  # pystac raises many types for broken JSON or links
        raise InputError(f"{catalog_path}: cannot read STAC catalog: {err}") from None
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
    return sorted(found, key=lambda i: (i.datetime or dt.datetime.min, i.id))


def search_api(
    url: str,
    collections: Sequence[str],
    intersects: dict,
    start: dt.date,
    end: dt.date,
    max_cloud_cover: float,
) -> list[pystac.Item]:
    """Items from a STAC API (pystac-client), paged, filtered by cloud cover on the server."""
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    try:
        client = Client.open(url)
        search = client.search(
            collections=list(collections),
            intersects=intersects,
            datetime=f"{start.isoformat()}/{end.isoformat()}",
            query={"eo:cloud_cover": {"lte": max_cloud_cover}},
        )
        items = list(search.items())
    except APIError as err:
        raise InputError(f"{url}: STAC API search failed: {err}") from None
    return sorted(items, key=lambda i: (i.datetime or dt.datetime.min, i.id))


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

    Remote assets are not probed (that would cost a request each); odc-stac reports them
    at load time instead.
    """
    result = ItemCheck()
    for item in items:
        try:
            profile = resolve_profile(item)
            for band, key in profile.asset_keys().items():
                if key not in item.assets:
                    raise InputError(f"asset {key!r} ({band}) missing")
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
    when = item.datetime or dt.datetime.fromisoformat(str(item.properties["start_datetime"]))
    return (when + dt.timedelta(hours=lon / 15.0)).date().isoformat()


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


def load_observations(items: Sequence[pystac.Item], geobox: GeoBox, chunk_px: int) -> Observations:
    """Load items onto ``geobox`` as a lazy (dask) reflectance cube.

    Same-solar-day items are mosaicked into one time step. Reflectance = DN × scale + offset
    per item and band (``raster:bands`` first, else the profile); DN equal to nodata → NaN.
    """
    import odc.stac

    if not items:
        raise NoItemsError("no items to load")
    profiles = {resolve_profile(item).name: resolve_profile(item) for item in items}
    if len(profiles) != 1:
        raise InputError(f"mixed sources in one load are not supported yet: {sorted(profiles)}")
    profile = next(iter(profiles.values()))
    keys = profile.asset_keys()

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
        resampling=resampling,
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
    if profile.mask_band:
        out[profile.mask_band] = raw[profile.mask_asset]
    data = xr.Dataset(out, coords={"time": raw.time, "y": raw.y, "x": raw.x})
    data.attrs.update(crs=str(geobox.crs), sensor=profile.sensor, mask_band=profile.mask_band or "")
    return Observations(
        data=data,
        items_by_time=tuple(tuple(i.id for i in groups[d]) for d in days),
        sensors_by_time=tuple(str(groups[d][0].properties.get("platform", profile.sensor)) for d in days),
    )
