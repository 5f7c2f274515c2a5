"""Sentinel-2 L2A profiles (Earth Search v1 and Planetary Computer) and their SCL clear rule.

* Earth Search v1 ``sentinel-2-l2a`` / ``sentinel-2-c1-l2a``: keys ``blue … swir22 scl``.
  Items carry ``raster:bands`` scale 1e-4, offset −0.1 (``earthsearch:boa_offset_applied``:
  the DN already holds the +1000 of processing baseline 04.00, also for older baselines).
* Planetary Computer ``sentinel-2-l2a``: keys ``B02 B03 B04 B08 B11 B12 SCL``; raw DN without
  ``raster:bands``: reflectance = DN × 1e-4, minus 0.1 from processing baseline 04.00 on
  (decided by ``s2:processing_baseline``, never by date). Hrefs are signed at read time.
"""

from __future__ import annotations

import pystac

from ..errors import InputError
from ..model import BANDS
from .mask import scl_clear, scl_clear_pixels
from .profile import SourceProfile

S2_BOA_OFFSET_BASELINE = (4, 0)
"""Sentinel-2 processing baseline from which L2A DN carry a +1000 offset (25 Jan 2022)."""
S2_BOA_OFFSET = -0.1
"""Reflectance offset of baseline ≥ 04.00 products (−1000 DN × 1e-4)."""


def processing_baseline(item: pystac.Item) -> tuple[int, int] | None:
    """``s2:processing_baseline`` as (major, minor), or None when the item has none."""
    raw = item.properties.get("s2:processing_baseline")
    if raw is None:
        return None
    try:
        major, minor = str(raw).split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        raise InputError(f"item {item.id}: unreadable s2:processing_baseline {raw!r}") from None


def baseline_offset(item: pystac.Item, profile: SourceProfile) -> float:
    """−0.1 from processing baseline 04.00 on, else 0 (items without ``raster:bands``)."""
    baseline = processing_baseline(item)
    if baseline is None:
        raise InputError(
            f"item {item.id}: Sentinel-2 item without raster:bands needs s2:processing_baseline "
            "to decide the −1000 DN offset"
        )
    return S2_BOA_OFFSET if baseline >= S2_BOA_OFFSET_BASELINE else 0.0


EARTH_SEARCH_S2 = SourceProfile(
    name="earth-search-s2",
    collections=("sentinel-2-l2a", "sentinel-2-c1-l2a"),
    sensor="sentinel-2",
    assets={b: b for b in BANDS},
    mask_band="scl",
    mask_asset="scl",
    scale=1e-4,
    offset=-0.1,
    signature_asset="swir16",
    clear_rule=scl_clear,
    clear_pixels=scl_clear_pixels,
)

PLANETARY_COMPUTER_S2 = SourceProfile(
    name="planetary-computer-s2",
    collections=("sentinel-2-l2a",),
    sensor="sentinel-2",
    assets={"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11", "swir22": "B12"},
    mask_band="scl",
    mask_asset="SCL",
    scale=1e-4,
    offset=S2_BOA_OFFSET,
    signature_asset="B11",
    default_offset=baseline_offset,
    clear_rule=scl_clear,
    clear_pixels=scl_clear_pixels,
)
