"""Natural change at the river's edge: scar rules every classifier applies (pure)."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Natural bank loss: a scar mostly near permanent water whose pixels were lost later the
# farther they lie from the water (the river taking its bank, look after look). A mining pit or
# a clearing beside a river appears at once. Such scars are ``other`` whatever the spectra say
# (sand and water after the change make a bank look like mining to them).
BANK_NEAR_WATER_MIN = 0.75     # share of the scar within scars.NEAR_WATER_M of water
BANK_ONSET_CORR_MIN = 0.4      # correlation of onset look with distance to water
BANK_ONSET_SPREAD_MIN = 1.0    # std of the onset, looks


def advancing_banks(scars: pd.DataFrame) -> np.ndarray:
    """bool per scar: natural bank loss (see BANK_* above); needs ``near_water_fraction``,
    ``onset_water_corr`` and ``onset_spread_looks`` columns (scars.describe_scars has them)."""
    needed = ("near_water_fraction", "onset_water_corr", "onset_spread_looks")
    if scars.empty or not set(needed) <= set(scars.columns):
        return np.zeros(len(scars), dtype=bool)
    return ((scars["near_water_fraction"].to_numpy(dtype=float) >= BANK_NEAR_WATER_MIN)
            & (scars["onset_water_corr"].to_numpy(dtype=float) >= BANK_ONSET_CORR_MIN)
            & (scars["onset_spread_looks"].to_numpy(dtype=float) >= BANK_ONSET_SPREAD_MIN))


# River dynamics: change the classifier calls neither mining nor clearing (``other``) that lies
# mostly within scars.NEAR_WATER_M of water is the river's own doing: bars built over their
# pioneer growth, banks slumping, channels moving. A pit or a clearing beside the river keeps
# its class and is issued; ``other`` far from water (a blowdown, a landslide, a burn) is issued.
RIVER_NEAR_WATER_MIN = 0.5     # share of the scar within scars.NEAR_WATER_M of water


def river_dynamics(scars: pd.DataFrame, classes) -> np.ndarray:
    """bool per scar: class ``other`` and at least RIVER_NEAR_WATER_MIN of its pixels within
    scars.NEAR_WATER_M of water (needs ``near_water_fraction``; all False without it)."""
    classes = np.asarray(classes, dtype=object)
    if scars.empty or "near_water_fraction" not in scars.columns:
        return np.zeros(len(scars), dtype=bool)
    near = scars["near_water_fraction"].to_numpy(dtype=float)
    return (classes == "other") & (np.nan_to_num(near) >= RIVER_NEAR_WATER_MIN)
