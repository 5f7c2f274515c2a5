"""Finding STAC items: a local static catalog, a saved ``items.json`` or a STAC API.

Every path gives ``pystac.Item`` objects filtered the same way (collections, place, dates,
cloud cover) and sorted by time; :func:`search_source` picks the path the config names.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pystac
import requests
import shapely.geometry
from pystac_client import Client
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from urllib3.util.retry import Retry

from ..config import SourceConfig
from ..errors import InputError
from ..files import write_text_atomic


def item_datetime(item: pystac.Item) -> dt.datetime:
    return item.datetime or dt.datetime.fromisoformat(str(item.properties["start_datetime"]))


def in_window(item: pystac.Item, start: dt.date, end: dt.date) -> bool:
    return start <= item_datetime(item).date() <= end


def item_sort_key(item: pystac.Item):
    return (item_datetime(item).replace(tzinfo=None), item.id)


def filter_items(
    items: Iterable[pystac.Item],
    collections: Sequence[str],
    intersects: dict,
    start: dt.date,
    end: dt.date,
    max_cloud_cover: float,
) -> list[pystac.Item]:
    """Items that match collections, place (lon/lat GeoJSON), dates (inclusive) and cloud cover (%)."""
    area = shapely.geometry.shape(intersects)
    found = []
    for item in items:
        if item.collection_id not in collections:
            continue
        if item.geometry is None or not shapely.geometry.shape(item.geometry).intersects(area):
            continue
        if not in_window(item, start, end):
            continue
        if float(item.properties.get("eo:cloud_cover", 0.0)) > max_cloud_cover:
            continue
        found.append(item)
    return sorted(found, key=item_sort_key)


def read_catalog(catalog_path: Path) -> list[pystac.Item]:
    """Every item of a local static catalog."""
    catalog_path = Path(catalog_path)
    if not catalog_path.is_file():
        raise InputError(f"{catalog_path}: STAC catalog not found")
    try:
        catalog = pystac.Catalog.from_file(str(catalog_path))
        return list(catalog.get_items(recursive=True))
    except Exception as err:  # pystac raises many types for broken JSON or links
        raise InputError(f"{catalog_path}: cannot read STAC catalog: {err}") from None


def search_catalog(
    catalog_path: Path,
    collections: Sequence[str],
    intersects: dict,
    start: dt.date,
    end: dt.date,
    max_cloud_cover: float,
    read: Callable[[Path], list[pystac.Item]] = read_catalog,
) -> list[pystac.Item]:
    """Items of a local static catalog that match collections, place, dates and cloud cover.
    ``read``: how the catalog's items are read (:class:`SourceReads` reads it once per run)."""
    return filter_items(read(Path(catalog_path)), collections, intersects, start, end, max_cloud_cover)


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
    read: Callable[[Path], list[pystac.Item]] = read_item_collection,
) -> list[pystac.Item]:
    """Items of a saved ``items.json`` that match, to reproduce a run offline."""
    return filter_items(read(Path(path)), collections, intersects, start, end, max_cloud_cover)


class SourceReads:
    """Local catalogs and item files read once, for the searches of one run (every area and
    period filters the same items: 115 areas searched a 9-item catalog 230 times, 5.4 s)."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, Path], list[pystac.Item]] = {}

    def _read(self, kind: str, reader: Callable[[Path], list[pystac.Item]], path: Path) -> list[pystac.Item]:
        key = (kind, Path(path).resolve())
        if key not in self._items:
            self._items[key] = reader(path)
        return self._items[key]

    def catalog(self, path: Path) -> list[pystac.Item]:
        return self._read("catalog", read_catalog, path)

    def item_collection(self, path: Path) -> list[pystac.Item]:
        return self._read("items", read_item_collection, path)


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
    max_items: int = 10_000
    """More items than this in one search is an error (a runaway or hostile pager)."""
    deadline_s: float = 600.0
    """A search still paging after this many seconds is an error (checked between pages)."""


def _stac_io(options: ApiOptions):
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

    Requests time out after ``options.timeout_s`` and are retried with exponential backoff. The
    paging is bounded: more than ``options.max_items`` items, a search still paging after
    ``options.deadline_s`` seconds (checked between pages), a page seen before (a ``next`` link
    that loops) or a page of items all seen before stop it with :class:`InputError`, as does a
    response that is not a STAC ItemCollection. Hrefs are returned as the server gives them:
    Planetary Computer hrefs are signed only at read time
    (:func:`pipeline.sources.load.href_patcher`), so nothing signed is ever stored.
    """
    options = options or ApiOptions()
    started = time.monotonic()
    try:
        client = Client.open(url, stac_io=_stac_io(options), timeout=options.timeout_s)
        search = client.search(
            collections=list(collections),
            intersects=intersects,
            datetime=f"{start.isoformat()}/{end.isoformat()}",
            query={"eo:cloud_cover": {"lte": max_cloud_cover}},
            limit=options.page_size,
        )
        search_url = search.url
        items = _read_pages(search.pages_as_dicts(), search_url, options, started)
    except InputError:
        raise
    except (APIError, requests.RequestException) as err:
        raise InputError(f"{url}: STAC API search failed: {_short(err)}") from None
    except Exception as err:  # noqa: BLE001 - HTML, broken JSON, a body of the wrong shape
        raise InputError(f"{url}: not a usable STAC API response ({type(err).__name__}: {_short(err)})") from None
    # Servers without the query extension ignore it: filter again (also dates and place).
    return filter_items(items, collections, intersects, start, end, max_cloud_cover)


def _short(err: Exception, limit: int = 300) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit] + " …"


def _read_pages(pages: Iterator[dict], url: str, options: ApiOptions, started: float) -> list[pystac.Item]:
    """Items of a paged search, within the bounds of ``options`` (see :func:`search_api`)."""
    items: list[pystac.Item] = []
    seen_ids: set[str] = set()
    seen_pages: set[str] = set()
    for n, page in enumerate(pages, start=1):
        if not isinstance(page, dict) or not isinstance(page.get("features"), list):
            raise InputError(f"{url}: page {n} of the search is not a STAC ItemCollection")
        fingerprint = json.dumps([page["features"], page.get("links")], sort_keys=True, default=str)
        fingerprint = hashlib.sha256(fingerprint.encode()).hexdigest()
        ids = []
        for k, feature in enumerate(page["features"]):
            try:
                item = pystac.Item.from_dict(feature, preserve_dict=False)
            except Exception as err:  # noqa: BLE001 - pystac raises several types for a bad Feature
                raise InputError(f"{url}: page {n}, feature {k} is not a valid STAC Item "
                                 f"({type(err).__name__}: {_short(err, 200)})") from None
            if not isinstance(item.id, str) or not item.id:
                raise InputError(f"{url}: page {n}, feature {k} has no id")
            ids.append(item.id)
            items.append(item)
        if fingerprint in seen_pages or (ids and seen_ids.issuperset(ids)):
            raise InputError(f"{url}: the search repeats page {n} (its 'next' link loops); stopped after "
                             f"{n} pages and {len(seen_ids)} items")
        seen_pages.add(fingerprint)
        seen_ids.update(ids)
        if len(items) > options.max_items:
            raise InputError(f"{url}: the search returned more than {options.max_items} items "
                             f"(source.max_items) after {n} pages; narrow the area, period or collections, "
                             "or raise source.max_items")
        elapsed = time.monotonic() - started
        if elapsed > options.deadline_s:
            raise InputError(f"{url}: the search was still paging after {elapsed:.0f} s (source.deadline_s = "
                             f"{options.deadline_s:g}) with {len(items)} items in {n} pages; stopped")
    return items


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


def search_source(source: SourceConfig, geometry: dict, period: tuple[dt.date, dt.date],
                  reads: SourceReads | None = None) -> list[pystac.Item]:
    """Items of the configured source (catalog, items file or API) over ``geometry`` in ``period``;
    ``reads``: local catalogs and item files already read in this run."""
    reads = reads or SourceReads()
    if source.stac_catalog is not None:
        return search_catalog(source.stac_catalog, source.collections, geometry, *period, source.max_cloud_cover,
                              read=reads.catalog)
    if source.stac_items is not None:
        return search_items_file(source.stac_items, source.collections, geometry, *period, source.max_cloud_cover,
                                 read=reads.item_collection)
    options = ApiOptions(timeout_s=source.timeout_s, retries=source.retries, max_items=source.max_items,
                         deadline_s=source.deadline_s)
    return search_api(source.stac_api, source.collections, geometry, *period, source.max_cloud_cover, options)


def source_location(source: SourceConfig) -> str:
    """Where the configured source lives (for messages)."""
    return str(source.stac_catalog or source.stac_items or source.stac_api)
