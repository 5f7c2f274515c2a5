"""A fixed reflectance stretch for evidence chips (pure).

A percentile stretch over a chip that bare ground dominates turns forest black, and makes the
same reflectance look different in two chips. Here every chip of every alert uses the same
limits: surface reflectance ``low``..``high`` per band, then a gamma (display = x ** (1/gamma)),
so that forest (red ≈ 0.02, green ≈ 0.035, blue ≈ 0.02) shows green, and sand and mining
spoil (≈ 0.15–0.25) show bright; before and after stay comparable. The limits are written into
each evidence manifest (:func:`stretch_manifest`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Stretch:
    """A fixed display stretch of three reflectance bands."""

    bands: tuple[str, str, str]
    """Common band names shown as red, green, blue."""
    low: tuple[float, float, float]
    """Reflectance shown black, per band."""
    high: tuple[float, float, float]
    """Reflectance shown at full brightness, per band (larger values saturate)."""
    gamma: float
    """Display gamma: brightness = ((r - low) / (high - low)) ** (1 / gamma)."""


FIXED_STRETCH = {
    "rgb": Stretch(("red", "green", "blue"), (0.0, 0.0, 0.0), (0.25, 0.20, 0.20), 2.2),
    "swir": Stretch(("swir22", "nir", "red"), (0.0, 0.0, 0.0), (0.30, 0.45, 0.25), 1.6),
}
NODATA_RGB = (0, 0, 0)


def apply_stretch(bands: list[np.ndarray], stretch: Stretch) -> np.ndarray:
    """uint8 (y, x, 3) from three reflectance arrays (float, NaN = nodata, shown black)."""
    stack = np.stack(bands, axis=-1).astype("float32")
    low, high = np.array(stretch.low, "float32"), np.array(stretch.high, "float32")
    scaled = np.clip((stack - low) / (high - low), 0, 1) ** (1.0 / stretch.gamma)
    nodata = ~np.isfinite(stack).all(axis=-1)
    image = (np.nan_to_num(scaled, nan=0.0) * 255 + 0.5).astype("uint8")
    image[nodata] = NODATA_RGB
    return image


def stretch_manifest() -> dict:
    """The stretches as written into an evidence manifest."""
    return {combo: {**asdict(s), "kind": "fixed reflectance, gamma"} for combo, s in FIXED_STRETCH.items()}
