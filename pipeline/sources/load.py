"""Checking STAC items and loading them as a dask-backed reflectance cube (odc-stac).

Each item's :class:`~pipeline.sources.profile.SourceProfile` (:mod:`pipeline.sources.registry`)
maps its asset keys to the common bands and gives scale and offset: ``raster:bands``
scale/offset win when present, and then nothing else is added (an offset is never applied
twice). :func:`check_reflectance` refuses looks whose reflectance is massively negative, the
symptom of a doubled offset.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numba
import numpy as np
import odc.stac
import pystac
import rasterio
import shapely.geometry
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords

from ..errors import InputError, NoItemsError
from ..model import Observations
from .registry import resolve_profile
from . import reader, upsample
from .search import item_datetime

log = logging.getLogger(__name__)


def href_patcher(items: Iterable[pystac.Item]) -> Callable[[str], str] | None:
    """A read-time href signer for Planetary Computer assets, or None when no item needs one."""
    for item in items:
        for asset in item.assets.values():
            host = urlparse(asset.href).netloc
            if host.endswith(".blob.core.windows.net"):
                import planetary_computer

                return planetary_computer.sign
    return None



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


def check_items(items: Iterable[pystac.Item], checked: dict | None = None) -> ItemCheck:
    """Open the header of every local asset; an item with a missing or corrupt asset is skipped.

    The mask asset is optional (composites carry none). Remote assets are not probed (that
    would cost a request each); odc-stac reports them at load time instead. ``checked``: the
    verdicts of a run's earlier calls, by item id and asset hrefs (areas that share items open
    each header once); updated.
    """
    result = ItemCheck()
    checked = {} if checked is None else checked
    for item in items:
        seen = (item.id, tuple(sorted((k, a.get_absolute_href() or a.href) for k, a in item.assets.items())))
        if seen in checked:
            reason = checked[seen]
            if reason is None:
                result.usable.append(item)
            else:
                result.skipped.append({"item": item.id, "reason": reason})
            continue
        try:
            profile = resolve_profile(item)
            keys = profile.asset_keys()
            if not profile.has_mask(item):
                keys.pop(profile.mask_band or "", None)
            for band, key in keys.items():
                if key not in item.assets:
                    raise InputError(f"asset {key!r} ({band}) missing")
                if band in profile.assets:
                    profile.scale_offset(item, key)
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
            checked[seen] = str(err)
            continue
        result.usable.append(item)
        checked[seen] = None
    return result


def probe_items(items: Sequence[pystac.Item], geobox: GeoBox,
                patch_url: Callable[[str], str] | None = None) -> list[tuple[pystac.Item, str]]:
    """Read every asset of ``items`` over the grid's extent; the items that fail, with the reason.

    Called after a load failed (a truncated COG passes the header check of :func:`check_items`
    and breaks mid-read; a remote asset may answer HTTP 500): the failing items are skipped and
    the run goes on without them.
    """
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window, from_bounds

    bad = []
    for item in items:
        profile = resolve_profile(item)
        for band, key in profile.item_keys(item).items():
            href = item.assets[key].get_absolute_href() or item.assets[key].href
            try:
                with rasterio.open(patch_url(href) if patch_url else href) as src:
                    bounds = transform_bounds(geobox.crs.to_wkt(), src.crs, *geobox.boundingbox)
                    window = from_bounds(*bounds, transform=src.transform).round_offsets().round_lengths()
                    whole = Window(0, 0, src.width, src.height)
                    if window.col_off < src.width and window.row_off < src.height \
                            and window.col_off + window.width > 0 and window.row_off + window.height > 0:
                        src.read(1, window=window.intersection(whole))
            except Exception as err:  # noqa: BLE001 - GDAL raises several types for a broken or remote file
                reason = " ".join(str(err).split())[:300]
                bad.append((item, f"asset {key!r} ({band}) cannot be read: {reason}"))
                break
    return bad


def solar_day(item: pystac.Item) -> str:
    """Local solar date of an acquisition: same-day tiles of one pass form one observation."""
    lon = shapely.geometry.shape(item.geometry).centroid.x if item.geometry else 0.0
    return (item_datetime(item) + dt.timedelta(hours=lon / 15.0)).date().isoformat()


def make_geobox(bounds_utm: tuple[float, float, float, float], epsg: int, resolution_m: float,
                phase: tuple[float, float] = (0.0, 0.0)) -> GeoBox:
    """Pixel grid over ``bounds_utm`` (xmin, ymin, xmax, ymax) whose edges lie on multiples of the
    resolution plus ``phase`` (x, y offsets, metres: :func:`native_phase`)."""
    xmin, ymin, xmax, ymax = bounds_utm
    r = resolution_m
    px, py = phase
    xmin, ymin = np.floor((xmin - px) / r) * r + px, np.floor((ymin - py) / r) * r + py
    xmax, ymax = np.ceil((xmax - px) / r) * r + px, np.ceil((ymax - py) / r) * r + py
    # tight: the edges as computed (from_bbox would otherwise move them to multiples of r)
    return GeoBox.from_bbox((xmin, ymin, xmax, ymax), crs=f"EPSG:{epsg}", resolution=r, tight=True)


def native_phase(items: Sequence[pystac.Item], epsg: int, resolution_m: float) -> tuple[float, float]:
    """Where the items' own pixels put the grid's edges: (x, y) offsets from multiples of the
    resolution, when every item's red band lies in EPSG ``epsg``, north-up, with square pixels a
    whole number of grid pixels wide, and all agree; else (0, 0).

    Sentinel-2 tiles start on multiples of 60 m (offset 0). Landsat Collection 2 grids start on
    odd multiples of 15 m, so a 30 m grid on multiples of 30 m would put every grid pixel across
    four Landsat pixels and blur each by bilinear resampling; on the items' own lattice they are
    read as they are. A grid in the north form of the area's UTM zone (Landsat south of the
    equator) counts, shifted by the false northing."""
    phases = set()
    for item in items:
        key = resolve_profile(item).assets.get("red")
        grid = upsample.source_grid(item, key) if key else None
        shift = reader.utm_northing_shift(grid.crs.epsg if grid is not None and grid.crs is not None else None, epsg)
        if shift is None:
            return (0.0, 0.0)
        t = grid.transform
        ratio = t.a / resolution_m
        if t.b or t.d or t.a <= 0 or t.e != -t.a or abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            return (0.0, 0.0)
        top = t.f + shift
        phases.add((round(t.c % resolution_m, 6) % resolution_m, round(top % resolution_m, 6) % resolution_m))
        if len(phases) > 1:
            return (0.0, 0.0)
    return phases.pop() if phases else (0.0, 0.0)


def partition_items(items: Sequence[pystac.Item]) -> list[list[pystac.Item]]:
    """Split items into groups loadable together: one profile, all with or all without a mask.

    Groups come in a stable order (profile name, then mask first).
    """
    groups: dict[tuple[str, bool], list[pystac.Item]] = {}
    for item in items:
        profile = resolve_profile(item)
        groups.setdefault((profile.name, not profile.has_mask(item)), []).append(item)
    return [groups[key] for key in sorted(groups)]


READ_GDAL_OPTIONS = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MAX_RETRY": "3",
                     "GDAL_HTTP_RETRY_DELAY": "0.5", "GDAL_HTTP_CONNECTTIMEOUT": "30", "GDAL_HTTP_TIMEOUT": "120"}
"""GDAL options of every pixel read: odc-stac's cloud defaults, but at most 3 retries of a failing
HTTP request (about 4 s with GDAL's growing delay) instead of 10 (about 25 min per open): an asset
that answers HTTP 500 fails its read soon, and :func:`probe_items` then skips its item. A server
that accepts no connection within 30 s, or does not finish a request within 120 s, fails it too
(GDAL waits forever by default)."""


def _by_solar_day(items: Sequence[pystac.Item]) -> dict[str, list[pystac.Item]]:
    """Items by local solar date (one look each), in the given order within a day."""
    groups: dict[str, list[pystac.Item]] = {}
    for item in items:
        groups.setdefault(solar_day(item), []).append(item)
    return groups


def _nominal_time(item: pystac.Item) -> np.datetime64:
    """The item's time as odc-stac stamps a look with it: its datetime, else its start, else its
    end datetime, the time zone dropped."""
    meta = item.common_metadata
    for stamp in (item.datetime, meta.start_datetime, meta.end_datetime):
        if stamp is not None:
            return np.datetime64(stamp.replace(tzinfo=None), "ns")
    raise InputError(f"item {item.id}: no datetime, start_datetime or end_datetime")


def plan_looks(groups: Sequence[Sequence[pystac.Item]]) -> tuple[np.ndarray, tuple, tuple]:
    """The looks that loading ``groups`` (:func:`partition_items`) and fusing them give, without
    reading or planning any pixel: (datetime64 of each look, its item ids, its platform), in the
    fused order (by time; a single group keeps odc-stac's order, by solar day)."""
    times, ids, platforms = [], [], []
    for group in groups:
        profile = resolve_profile(group[0])
        by_day = _by_solar_day(group)
        for day in sorted(by_day):
            times.append(min(_nominal_time(item) for item in by_day[day]))
            ids.append(tuple(item.id for item in by_day[day]))
            platforms.append(profile.platform(by_day[day][0]))
    times = np.array(times, dtype="datetime64[ns]")
    order = np.argsort(times, kind="stable") if len(groups) > 1 else np.arange(times.size)
    return times[order], tuple(ids[i] for i in order), tuple(platforms[i] for i in order)


def load_observations(
    items: Sequence[pystac.Item],
    geobox: GeoBox,
    chunk_px: int | None,
    patch_url: Callable[[str], str] | None = None,
) -> Observations:
    """Load items of one profile onto ``geobox`` as a lazy (dask) reflectance cube of
    ``chunk_px``² chunks, or read it at once into numpy when ``chunk_px`` is None.

    Same-solar-day items are mosaicked into one time step (odc-stac reprojects every tile,
    whatever its MGRS tile or UTM zone, onto the grid). Reflectance = DN × scale + offset per
    item and band (``raster:bands`` first, else the profile); DN equal to nodata → NaN. The
    mask band is loaded when every item has it (see :func:`partition_items` for mixed input).
    ``patch_url`` signs hrefs at read time (Planetary Computer).
    """
    if not items:
        raise NoItemsError("no items to load")
    profiles = {resolve_profile(item).name: resolve_profile(item) for item in items}
    if len(profiles) != 1:
        raise InputError(
            f"one load takes one source profile, got {sorted(profiles)}: split with partition_items"
        )
    profile = next(iter(profiles.values()))
    masked = {profile.has_mask(item) for item in items}
    if len(masked) != 1:
        raise InputError("one load takes items all with or all without a mask band: split with partition_items")
    keys = profile.item_keys(items[0])

    groups = _by_solar_day(items)
    days = sorted(groups)

    resampling = {key: "bilinear" for key in profile.assets.values()}
    if profile.mask_asset:
        resampling[profile.mask_asset] = "nearest"
    resampling = {k: v for k, v in resampling.items() if k in keys.values()}
    eager = chunk_px is None
    if eager:
        raw = _read_eager(items, geobox, resampling, groups, patch_url)
    else:
        raw = _odc_load(items, geobox, resampling, patch_url, {"time": 1, "y": chunk_px, "x": chunk_px})
    if raw.sizes["time"] != len(days):
        raise InputError(f"expected {len(days)} observations after grouping, odc-stac gave {raw.sizes['time']}")

    out = {}
    for band, key in profile.assets.items():
        scale_offset = np.array([profile.scale_offset(groups[d][0], key) for d in days], dtype="float64")
        scale, offset = scale_offset[:, 0].astype("float32"), scale_offset[:, 1].astype("float32")
        dn = raw[key]
        if eager:
            out[band] = dn.copy(data=dn_to_reflectance(dn.values, scale, offset, profile.nodata))
        else:
            scale, offset = xr.DataArray(scale, dims="time"), xr.DataArray(offset, dims="time")
            out[band] = (dn.astype("float32") * scale + offset).where(dn != profile.nodata)
    if profile.mask_band in keys:
        out[profile.mask_band] = raw[profile.mask_asset]
    data = xr.Dataset(out, coords={"time": raw.time, "y": raw.y, "x": raw.x})
    data.attrs.update(crs=str(geobox.crs), sensor=profile.sensor,
                      mask_band=profile.mask_band if profile.mask_band in keys else "")
    return Observations(
        data=data,
        items_by_time=tuple(tuple(i.id for i in groups[d]) for d in days),
        sensors_by_time=tuple(profile.platform(groups[d][0]) for d in days),
    )


def _odc_load(items, geobox: GeoBox, resampling: dict[str, str], patch_url, chunks: dict) -> xr.Dataset:
    """odc-stac's (lazy) load of the asset keys in ``resampling``, one look per solar day."""
    # odc-stac captures the active GDAL options into the graph (they travel to the workers)
    with rasterio.Env(**READ_GDAL_OPTIONS):
        return odc.stac.load(
            items,
            bands=list(resampling),
            geobox=geobox,
            chunks=chunks,
            groupby=lambda item, parsed, idx: solar_day(item),
            resampling=resampling,
            patch_url=patch_url,
            fail_on_error=True,
        )


def _read_now(items, geobox: GeoBox, resampling: dict[str, str], patch_url) -> xr.Dataset:
    """Read at once: one read of the whole window per file (odc-stac's own eager load cuts it
    in 2048² pieces)."""
    raw = _odc_load(items, geobox, resampling, patch_url, {"time": -1, "y": geobox.shape[0], "x": geobox.shape[1]})
    with rasterio.Env(**READ_GDAL_OPTIONS):
        return raw.compute(scheduler="synchronous")


def _read_eager(items, geobox: GeoBox, resampling: dict[str, str], groups: dict[str, list], patch_url) -> xr.Dataset:
    """The asset keys in ``resampling`` on ``geobox``, read now. When a key's source pixels, in
    every item, lie on the grid's lattice or a coarser aligned one
    (:func:`pipeline.sources.upsample.lattice_factor`), they are read straight from the files
    (:mod:`pipeline.sources.reader`: no per-read planning, blocks decoded once per process),
    upsampled here when coarser and mosaicked as odc-stac mosaics a day's tiles: the same
    integers as its warper gives, at a fraction of its cost. The rest go through odc-stac."""
    days = sorted(groups)
    # a day's items in odc-stac's order (time, then id): the first valid pixel wins
    by_day = [sorted(groups[day], key=lambda item: (_nominal_time(item), item.id)) for day in days]
    parsed = {id(item): odc.stac.parse_item(item) for day_items in by_day for item in day_items}
    direct: dict[str, tuple] = {}
    for key in resampling:
        grids = [reader.in_crs(upsample.source_grid(item, key, parsed[id(item)]), geobox.crs)
                 for day_items in by_day for item in day_items]
        lattice = upsample.common_lattice(grids, geobox)
        read = _read_direct(by_day, parsed, key, lattice, geobox, resampling[key], patch_url) if lattice else None
        if read is not None:
            pixels, nodata = read
            direct[key] = (("time", "y", "x"), pixels, {"nodata": nodata})
    warped = {k: v for k, v in resampling.items() if k not in direct}
    parts = [_read_now(items, geobox, warped, patch_url)] if warped else []
    if direct:
        # stamped as odc-stac stamps a look: its first item's time (microseconds, as it gives them)
        times = np.array([_nominal_time(day_items[0]) for day_items in by_day]).astype("datetime64[us]")
        parts.append(xr.Dataset(direct, coords={"time": times, **dict(xr_coords(geobox))}))
    raw = xr.merge(parts, join="exact", compat="override", combine_attrs="drop_conflicts") if len(parts) > 1 else parts[0]
    return raw[list(resampling)]


_ranks = threading.local()
_next_rank = itertools.count()


def _thread_rank() -> int:
    """0 for the first thread that reads, 1 for the next, ... (spreads threads over the files)."""
    rank = getattr(_ranks, "rank", None)
    if rank is None:
        rank = _ranks.rank = next(_next_rank)
    return rank


def _read_direct(by_day, parsed: dict, key: str, lattice: GeoBox, geobox: GeoBox, method: str,
                 patch_url) -> tuple | None:
    """(looks, rows, cols) pixels of asset ``key`` on ``geobox`` and their nodata: each look's
    items (``by_day``, in mosaic order; ``parsed`` by ``odc.stac.parse_item``) read from the files
    on their ``lattice`` (:func:`reader.read_box`), upsampled when coarser, the first valid pixel
    kept. None when the items do not say the asset's integer type and nodata, or a file is not
    where its item says."""
    metas = [[parsed[id(item)][key] for item in day_items] for day_items in by_day]
    kinds = {(m.meta.data_type, m.meta.nodata) for day in metas for m in day}
    if len(kinds) != 1:
        return None
    dtype, nodata = kinds.pop()
    if dtype is None or nodata is None or not np.issubdtype(np.dtype(dtype), np.integer):
        return None
    k = upsample.lattice_factor(lattice, geobox)
    box, u, v = (geobox, None, None) if k == 1 else upsample.source_window(lattice, geobox)

    def read(meta) -> np.ndarray:
        pixels = reader.read_box(patch_url(meta.uri) if patch_url else meta.uri, box, nodata, dtype)
        return pixels if k == 1 else upsample.upsample(pixels[None], u, v, nodata, method)[0]

    out = np.empty((len(metas), *geobox.shape), dtype=dtype)
    try:
        with rasterio.Env(**READ_GDAL_OPTIONS):
            # threads start at different looks, so that they seldom wait for the same file
            first = int(_thread_rank() * 0.618034 * len(metas)) % len(metas)
            for look in [*range(first, len(metas)), *range(first)]:
                day = metas[look]
                out[look] = read(day[0])
                for meta in day[1:]:
                    np.copyto(out[look], read(meta), where=out[look] == nodata)
    except reader.OffLattice as err:
        log.debug("reading %s through the warper: %s", key, err)
        return None
    return out, nodata


@numba.njit(cache=True, nogil=True)
def _scale(dn, scale, offset, nodata, has_nodata, out):
    for t in range(dn.shape[0]):
        for i in range(dn.shape[1]):
            for j in range(dn.shape[2]):
                value = dn[t, i, j]
                if has_nodata and value == nodata:
                    out[t, i, j] = np.float32(np.nan)
                else:
                    out[t, i, j] = np.float32(value) * scale[t] + offset[t]


def dn_to_reflectance(dn: np.ndarray, scale: np.ndarray, offset: np.ndarray, nodata) -> np.ndarray:
    """float32 (time, y, x) reflectance ``DN × scale + offset`` (float32 arithmetic, per look), NaN
    where DN equals ``nodata``: bit for bit what the lazy path's xarray expression gives, in one pass."""
    out = np.empty(dn.shape, dtype=np.float32)
    has_nodata = nodata is not None
    _scale(dn, scale.astype(np.float32), offset.astype(np.float32), dn.dtype.type(nodata if has_nodata else 0),
           has_nodata, out)
    return out


NEGATIVE_REFLECTANCE = -0.05
"""Reflectance below this is implausible for land (noise and water reach about −0.02)."""
MAX_NEGATIVE_FRACTION = 0.2
"""A look with more of its valid pixels below ``NEGATIVE_REFLECTANCE`` is refused."""


def negative_counts(data: xr.Dataset, clear: xr.DataArray | None = None) -> tuple[xr.DataArray, xr.DataArray]:
    """Per time step: the valid (and clear) pixels whose darkest visible band is below −0.05, and
    all valid (and clear) pixels. Counts add up over the chunks of a grid."""
    darkest = np.fmin(np.fmin(data["blue"], data["green"]), data["red"])
    valid = darkest.notnull() if clear is None else darkest.notnull() & clear
    negative = (darkest < NEGATIVE_REFLECTANCE) & valid
    return negative.sum(("y", "x")), valid.sum(("y", "x"))


def negative_fraction(data: xr.Dataset, clear: xr.DataArray | None = None) -> xr.DataArray:
    """Per time step: the fraction of valid (and clear) pixels whose darkest visible band is below −0.05.

    Clouds are bright and hide a wrong offset, hence ``clear`` (boolean, time × y × x) when
    known. Lazy (dask) when ``data`` is; compute it with the rest to read the pixels once.
    """
    negative, valid = negative_counts(data, clear)
    return (negative / valid.clip(min=1)).rename("negative_fraction")


def check_reflectance(fractions: Sequence[float], items_by_time: Sequence[Sequence[str]]) -> None:
    """Refuse massively negative reflectance (a doubled or wrong offset); the error names the items."""
    bad = [(list(ids), float(f)) for f, ids in zip(fractions, items_by_time) if f > MAX_NEGATIVE_FRACTION]
    if bad:
        detail = "; ".join(f"items {ids}: {100 * f:.0f}% of pixels below {NEGATIVE_REFLECTANCE}" for ids, f in bad)
        raise InputError(
            f"reflectance is massively negative (offset applied twice or wrong scale/offset?): {detail}"
        )
