"""What a source is: :class:`SourceProfile`, one per collection and provider.

A profile maps an item's asset keys to the common band names (:data:`pipeline.model.BANDS`
and a mask band), says how digital numbers become surface reflectance when the item carries
no ``raster:bands`` scale/offset, and owns its clear-sky rule (the lazy one detection uses and
the numpy one evidence chips use). The core of the pipeline never sees a source-specific name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pystac
import xarray as xr

from .mask import all_valid_clear


@dataclass(frozen=True)
class SourceProfile:
    """How one source's items map to the pipeline's common bands, and which pixels are clear."""

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
    default_offset: Callable[[pystac.Item, "SourceProfile"], float] | None = None
    """Offset rule for items without ``raster:bands`` (e.g. by processing baseline); None = ``offset``."""
    clear_rule: Callable[..., xr.DataArray] | None = None
    """Lazy clear mask ``(data, resolution_m, cloud_buffer_m, nodata_edge_m)`` when the mask band is loaded."""
    clear_pixels: Callable[[np.ndarray], np.ndarray] | None = None
    """Numpy rule: mask-band values -> boolean clear (used on evidence chips)."""

    def asset_keys(self) -> dict[str, str]:
        """Common name -> asset key, mask included."""
        keys = dict(self.assets)
        if self.mask_band and self.mask_asset:
            keys[self.mask_band] = self.mask_asset
        return keys

    def item_keys(self, item: pystac.Item) -> dict[str, str]:
        """Common name -> asset key of what ``item`` is read with: the mask too when it has one."""
        return self.asset_keys() if self.has_mask(item) else dict(self.assets)

    def has_mask(self, item: pystac.Item) -> bool:
        """Whether the item carries this profile's mask asset (composites do not)."""
        return bool(self.mask_asset) and self.mask_asset in item.assets

    def clear_mask(self, data: xr.Dataset, resolution_m: float, cloud_buffer_m: float,
                   nodata_edge_m: float) -> xr.DataArray:
        """Lazy clear mask of a loaded cube: the profile's rule, or every valid pixel without a mask band."""
        if self.clear_rule is not None and self.mask_band and self.mask_band in data:
            return self.clear_rule(data, resolution_m, cloud_buffer_m, nodata_edge_m)
        return all_valid_clear(data, resolution_m, nodata_edge_m)

    def scale_offset(self, item: pystac.Item, asset_key: str) -> tuple[float, float]:
        """Scale and offset that turn the asset's DN into surface reflectance (unitless).

        ``raster:bands`` on the asset wins and is used alone; otherwise the profile decides.
        Exactly one offset is ever applied.
        """
        bands = item.assets[asset_key].extra_fields.get("raster:bands") or [{}]
        first = bands[0]
        if "scale" in first or "offset" in first:
            return float(first.get("scale", 1.0)), float(first.get("offset", 0.0))
        if self.default_offset is not None:
            return self.scale, self.default_offset(item, self)
        return self.scale, self.offset

    def platform(self, item: pystac.Item) -> str:
        """Platform name, lower case (``sentinel-2a``, ``landsat-8``): PC and Earth Search differ in case."""
        return str(item.properties.get("platform", self.sensor)).lower()
