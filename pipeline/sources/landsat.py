"""Landsat Collection 2 Level-2 profile (Earth Search and Planetary Computer) and its QA_PIXEL rule.

Keys ``blue green red nir08 swir16 swir22 qa_pixel``; reflectance = DN × 2.75e-5 − 0.2, fill 0.
"""

from __future__ import annotations

from .mask import qa_pixel_clear, qa_pixel_clear_pixels
from .profile import SourceProfile

LANDSAT_C2_L2 = SourceProfile(
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
    clear_rule=qa_pixel_clear,
    clear_pixels=qa_pixel_clear_pixels,
)
