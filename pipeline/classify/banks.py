"""Natural change at the river's edge: scar rules every classifier applies (pure)."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Natural bank loss: a scar mostly near permanent water, at least half of it by a *river*, whose
# pixels were lost later the farther they lie from the water (the river taking its bank, look
# after look). A mining pit or a clearing beside a river appears at once. Such scars are
# ``other`` whatever the spectra say (sand and water after the change make a bank look like
# mining to them). River water as the river-dynamics rule below reads it
# (``near_river_fraction``, scars.river_water): a pit that grows outward from its own old ponds
# look after look also lies by water and advances from it, but ponds are no river, so it keeps
# its class. The river share asked is the river-dynamics rule's, not BANK_NEAR_WATER_MIN: the
# bank a river takes is strewn with side pools and pixels of water seen in one baseline look,
# which are water but no river (an eroding bank of the look-alike scene lies 90 % within 60 m of
# water, 60 % within 60 m of the river).
BANK_NEAR_WATER_MIN = 0.75     # share of the scar within scars.NEAR_WATER_M of any water
BANK_ONSET_CORR_MIN = 0.4      # correlation of onset look with distance to water
BANK_ONSET_SPREAD_MIN = 1.0    # std of the onset, looks


def advancing_banks(scars: pd.DataFrame) -> np.ndarray:
    """bool per scar: natural bank loss (see BANK_* above); needs ``near_water_fraction``,
    ``near_river_fraction``, ``onset_water_corr`` and ``onset_spread_looks`` columns
    (scars.describe_scars has them).
    All False without them: a table that cannot tell a river from a pond (one written before
    ``near_river_fraction`` existed has only ``near_water_fraction``) forces nothing to
    ``other``, as :func:`river_dynamics` silences nothing on it."""
    needed = ("near_water_fraction", "near_river_fraction", "onset_water_corr", "onset_spread_looks")
    if scars.empty or not set(needed) <= set(scars.columns):
        return np.zeros(len(scars), dtype=bool)
    return ((scars["near_water_fraction"].to_numpy(dtype=float) >= BANK_NEAR_WATER_MIN)
            & (np.nan_to_num(scars["near_river_fraction"].to_numpy(dtype=float)) >= RIVER_NEAR_WATER_MIN)
            & (scars["onset_water_corr"].to_numpy(dtype=float) >= BANK_ONSET_CORR_MIN)
            & (scars["onset_spread_looks"].to_numpy(dtype=float) >= BANK_ONSET_SPREAD_MIN))


# River dynamics: change the classifier calls neither mining nor clearing (``other``) that lies
# mostly within scars.NEAR_WATER_M of a *river* and holds no water of its own is the river's
# doing: bars built over their pioneer growth, banks slumping, channels moving. River water is a
# water body that crosses the scar's 300 m context window and is at least
# scars.RIVER_LENGTH_MIN_M long inside it (``near_river_fraction``, scars.river_water); old mining
# ponds are water too but small and compact, so an ``other`` scar dug beside a field of older
# flooded pits (La Pampa, Huepetuhe) is issued. A pit holds ponds, so an ``other`` scar by the
# river with ponds in it (a pit the model was unsure of) is issued too; so is a pit or a
# clearing beside the river with its class, and ``other`` far from water (a blowdown, a
# landslide, a burn).
RIVER_NEAR_WATER_MIN = 0.5     # share of the scar within scars.NEAR_WATER_M of river water
RIVER_OWN_WATER_MAX = 0.1      # share of the scar that is open water after the change


def by_the_river(scars: pd.DataFrame) -> np.ndarray:
    """bool per scar: at least RIVER_NEAR_WATER_MIN of its pixels within scars.NEAR_WATER_M of
    river water (not ponds) and under RIVER_OWN_WATER_MAX of them water after the change (needs
    ``near_river_fraction`` and ``water_fraction``, which scars.describe_scars gives; all False
    without them: nothing is judged on a table that cannot tell a river from a pond)."""
    if scars.empty or not {"near_river_fraction", "water_fraction"} <= set(scars.columns):
        return np.zeros(len(scars), dtype=bool)
    near = np.nan_to_num(scars["near_river_fraction"].to_numpy(dtype=float))
    own_water = np.nan_to_num(scars["water_fraction"].to_numpy(dtype=float))
    return (near >= RIVER_NEAR_WATER_MIN) & (own_water < RIVER_OWN_WATER_MAX)


# Sand on the river's edge: a scar the classifier calls ``mining`` that lies by the river as
# above, without water of its own, is ``other``. Its new ground is sand where the river runs: the
# look of a bar built over its pioneer growth (cane and Tessaria, NDVI 0.6-0.7, so it flags as
# vegetation lost) and of mining sand alike, and the spectra cannot tell them. Gold is washed
# from gravel with water, so a pit dug into the vegetated bank holds ponds within weeks and
# keeps its class; the mining that works the bars and beaches themselves digs ground already
# open in the baseline, which no path flags. A scar mostly farther from the river, or along
# ponds (no river), keeps its class. With ``detection.natural_loss: other`` these scars are
# issued as ``other`` with the model's probability of ``other``.
def river_sand(scars: pd.DataFrame, classes) -> np.ndarray:
    """bool per scar: class ``mining`` and :func:`by_the_river`."""
    return (np.asarray(classes, dtype=object) == "mining") & by_the_river(scars)


def river_dynamics(scars: pd.DataFrame, classes) -> np.ndarray:
    """bool per scar: class ``other`` and :func:`by_the_river`."""
    return (np.asarray(classes, dtype=object) == "other") & by_the_river(scars)
