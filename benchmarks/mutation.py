#!/usr/bin/env python3
"""Mutation testing of the pipeline's core: does the test suite catch small, meaningful regressions?

Each mutant is one small change a developer could plausibly make by mistake: an operator, a
constant, a dropped condition, a narrowed ``except``, a forgotten area, a skipped rename. The tool
applies the mutants one at a time to a *temporary copy* of the repository (the working tree is
never touched), runs the tests that cover the mutated module there with a deadline, and records
whether the tests failed (``killed``), passed (``survived``) or hung (``timeout``).

    .venv/bin/python benchmarks/mutation.py                     # every curated mutant
    .venv/bin/python benchmarks/mutation.py --list              # the mutants, where they apply
    .venv/bin/python benchmarks/mutation.py --only mask-scl-clear-gains-bad-classes,state-narrow-except
    .venv/bin/python benchmarks/mutation.py --merge --only ...  # re-run a few, update the results file
    .venv/bin/python benchmarks/mutation.py --generate          # plus operator-boundary mutants

Results: ``benchmarks/mutation_results.json`` (score, every mutant with its status, the test that
killed it, and for every survivor the written reason why it is equivalent, if it is) and
``benchmarks/mutation_results.md`` (a summary table).

Where a mutant applies
----------------------
A mutant names a module (``pipeline.change``) and an exact source snippet. The module is looked
up through ``MODULE_CANDIDATES`` (old and new names, so the list survives the package move of
issue 12) and ``--module-map old=new``; when the snippet is not in any candidate file, every
``pipeline/**/*.py`` is searched and the snippet must occur exactly once in the package. A mutant
whose snippet is found nowhere is reported as ``not applicable`` (the code changed: update the
snippet), never silently counted.

Which tests run
---------------
``TEST_GROUPS`` maps a topic to test-file globs; only existing files are used, so renamed test
modules are picked up by their new names. The notebooks (marker ``notebooks``) never run here.
Before the mutants, every selected group runs once unmutated: a group that fails without a
mutant would kill everything, and the tool stops instead.

Score = (killed + timeout) / (killed + timeout + survived); mutants marked equivalent are
reported separately and the score excluding them is given too.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime as dt
import fnmatch
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "pipeline"
RESULTS_JSON = REPO / "benchmarks" / "mutation_results.json"
RESULTS_MD = REPO / "benchmarks" / "mutation_results.md"
COPY_IGNORE = (".git", ".venv", "venv", "__pycache__", "*.pyc", "*.egg-info", ".pytest_cache", "out",
               "generated", "dask-worker-space", ".ipynb_checkpoints")

# Old module name -> every name it may have now (issue 12 moves the package layout). The first
# candidate file that holds the snippet exactly once wins; then the whole package is searched.
MODULE_CANDIDATES: dict[str, tuple[str, ...]] = {
    "pipeline.change": ("pipeline.change",),
    "pipeline.mask": ("pipeline.sources.mask", "pipeline.mask"),
    "pipeline.scars": ("pipeline.scars",),
    "pipeline.alerts": ("pipeline.alerts", "pipeline.model", "pipeline.outputs.geojson", "pipeline.outputs.tables"),
    "pipeline.lifecycle": ("pipeline.lifecycle",),
    "pipeline.state": ("pipeline.state",),
    "pipeline.files": ("pipeline.files",),
    "pipeline.batch": ("pipeline.batch", "pipeline.detect", "pipeline.plan"),
    "pipeline.evaluate": ("pipeline.training.evaluate", "pipeline.evaluate"),
    "pipeline.train": ("pipeline.training.train", "pipeline.train"),
    "pipeline.ingest": ("pipeline.sources.sentinel2", "pipeline.sources.landsat", "pipeline.sources.profile",
                        "pipeline.sources.registry", "pipeline.sources.load", "pipeline.sources.search",
                        "pipeline.ingest"),
    "pipeline.report": ("pipeline.outputs.report", "pipeline.report"),
    "pipeline.evidence": ("pipeline.outputs.evidence", "pipeline.evidence"),
}

# Topic -> test files (globs, relative to the repository) or pytest node ids (``file::test``).
# Files that do not exist are skipped, so renamed test modules are picked up by their new names.
# Fast, focused files first: with ``-x`` the first failure ends the run.
_LIFECYCLE_UNIT = tuple(f"tests/test_lifecycle.py::{name}" for name in (
    "test_growing_scar_keeps_its_id_and_first_date_and_is_expanding",
    "test_stored_alert_not_seen_again_is_carried_over_and_growth_below_share_is_ongoing",
    "test_growth_of_exactly_expanding_share_is_still_ongoing",
    "test_a_scar_matches_a_stored_alert_it_covers_exactly_match_overlap_of",
    "test_a_zero_area_stored_alert_never_takes_over_a_new_scar",
    "test_rejected_alert_is_never_issued_again",
    "test_window_starts_at_the_last_processed_date_minus_the_lookback",
))
_SOURCES_UNIT = tuple(f"tests/test_sources.py::{name}" for name in (
    "test_real_items_map_to_profile_bands_and_scale_offset",
    "test_earth_search_offset_is_not_applied_twice",
    "test_planetary_computer_offset_follows_processing_baseline_not_date",
    "test_search_pages_and_collections_parse",
    "test_qa_pixel_mask_drops_flagged_bits_and_grows_clouds",
    "test_mass_negative_reflectance_is_refused_naming_the_item",
))
TEST_GROUPS: dict[str, tuple[str, ...]] = {
    "change": ("tests/test_change_rules.py", "tests/test_change.py", "tests/test_indices.py"),
    "mask": ("tests/test_mask*.py",),
    "features": ("tests/test_features.py",),
    "scars": ("tests/test_scars*.py",),
    "alerts": ("tests/test_alerts*.py",),
    "lifecycle": ("tests/test_alerts*.py", *_LIFECYCLE_UNIT),
    "state": ("tests/test_state*.py", *_LIFECYCLE_UNIT),
    "files": ("tests/test_files*.py",),
    "batch": ("tests/test_multi_area*.py", "tests/test_batch*.py"),
    "banks": ("tests/test_banks.py",),
    # the scheduled-run sequence (conftest.run_sequence), without the slow killed-run test
    "sequence": tuple(f"tests/test_lifecycle.py::{name}" for name in (
        "test_growing_window_gives_new_then_ongoing_with_stable_ids",
        "test_the_new_alerts_file_and_state_store_follow_the_runs",
        "test_nothing_new_leaves_outputs_untouched",
        "test_overwrite_redoes_a_window_and_alerts_not_seen_again_stay_issued",
    )),
    "evidence": ("tests/test_evidence*.py",),
    "report": ("tests/test_report_content.py",),
    "evaluate": ("tests/test_train_evaluate.py::test_area_estimates_reproduce_the_published_example",
                 "tests/test_train_evaluate.py::test_an_unlabelled_or_too_thin_sample_is_refused",
                 "tests/test_train_evaluate.py::test_scars_are_grouped_by_the_2_km_block_that_holds_their_centroid",
                 "tests/test_train_evaluate.py::test_a_scar_covered_by_several_alerts_together_is_found",
                 "tests/test_evaluate*.py"),
    "sources": ("tests/test_profiles*.py", *_SOURCES_UNIT),
    "e2e": ("tests/test_end_to_end.py",),
    "exports": ("tests/test_exports*.py",),
}


@dataclasses.dataclass(frozen=True)
class Mutant:
    id: str
    module: str
    find: str
    replace: str
    reason: str
    tests: tuple[str, ...]
    origin: str = "curated"  # "issue13" (the mutants of the issue text), "curated", "generated"


def M(id, module, find, replace, reason, tests, origin="curated"):  # noqa: N802 - a table constructor
    return Mutant(id, module, find, replace, reason, tuple(tests), origin)


MUTANTS: list[Mutant] = [
    # --- the eleven mutants of issue 13 ------------------------------------------------------
    M("change-persistence-strict", "pipeline.change",
      "(n_hits >= params.persistence_min * n_clear_after)", "(n_hits > params.persistence_min * n_clear_after)",
      "persistence at exactly the threshold (e.g. 3 of 5 clear looks at 0.6) no longer counts",
      ["change"], "issue13"),
    M("mask-scl-clear-gains-bad-classes", "pipeline.mask",
      "SCL_CLEAR = (SCL_VEGETATION, SCL_BARE, SCL_WATER, SCL_UNCLASSIFIED)",
      "SCL_CLEAR = (SCL_SATURATED, SCL_DARK, SCL_VEGETATION, SCL_BARE, SCL_WATER, SCL_UNCLASSIFIED, SCL_SNOW)",
      "saturated, dark and snow SCL pixels are trusted as clear ground", ["mask"], "issue13"),
    M("alerts-id-raw-centroid", "pipeline.alerts",
      "snapped = (round(centroid_x / ID_GRID_M), round(centroid_y / ID_GRID_M))",
      "snapped = (centroid_x, centroid_y)",
      "alert_id hashed from the raw centroid: a scar that shifts by a pixel gets a new id",
      ["alerts"], "issue13"),
    M("state-narrow-except", "pipeline.state",
      "except Exception as err:  # noqa: BLE001", "except KeyError as err:  # noqa: BLE001",
      "a corrupt state store escapes as a raw GDAL error instead of an InputError naming the file",
      ["state"], "issue13"),
    M("batch-first-area-only", "pipeline.batch",
      "detections = detect_areas(effective, plans, reporter)",
      "detections = detect_areas(effective, plans[:1], reporter)",
      "only the first area of a run is processed", ["batch"], "issue13"),
    M("batch-evidence-new-only", "pipeline.batch",
      'isin(["new", "expanding"])', 'isin(["new"])',
      "evidence is rewritten for new alerts only: an expanding alert keeps its old chips and polygon",
      ["evidence"], "issue13"),
    M("mask-no-nodata-edge-growth", "pipeline.mask",
      "~_grow_lazy(~valid, int(round(nodata_edge_m / resolution_m)))", "~_grow_lazy(~valid, 0)",
      "pixels next to nodata (swath edges with corrupt values) are trusted", ["mask"], "issue13"),
    M("change-last-look-confirmed", "pipeline.change",
      "confidence[last_pending & ~any_confirmed] = CONFIDENCE_LOW",
      "confidence[last_pending & ~any_confirmed] = CONFIDENCE_NOMINAL",
      "a flag of the last clear look, never repeated, is treated as confirmed", ["change"], "issue13"),
    M("change-no-haze-test", "pipeline.change",
      "and v_ndvi > haze_ndvi_min and v_mndwi < zero):", "and v_ndvi > haze_ndvi_min and v_mndwi < zero and False):",
      "hazy looks count as evidence of change", ["change"], "issue13"),
    M("files-no-atomic-rename", "pipeline.files",
      "        write(Path(tmp))\n        if _staging is not None:\n            _staging.add(path, Path(tmp))\n"
      "            staged = True\n        else:\n            os.replace(tmp, path)\n",
      "        write(path)\n        tmp = None\n",
      "outputs are written in place: a killed or failing writer leaves a half file", ["files"], "issue13"),
    M("evaluate-olofsson-variance-n", "pipeline.evaluate",
      "(1 - share) / (n_h[:, None] - 1)).sum(axis=0)", "(1 - share) / n_h[:, None]).sum(axis=0)",
      "Olofsson area variance divides by n_h instead of n_h - 1", ["evaluate"], "issue13"),

    # --- change ------------------------------------------------------------------------------
    M("change-forest-ignores-water", "pipeline.change",
      "is_forest = count > 0 and b_ndvi >= forest_min and b_mndwi < zero", "is_forest = count > 0 and b_ndvi >= forest_min",
      "green water (MNDWI > 0) counts as baseline forest", ["change"]),
    M("change-no-pixel-spread", "pipeline.change",
      "threshold = drop_sigma * spread\n", "threshold = drop_sigma * spread * 0\n",
      "the drop is no longer judged against the pixel's own variability", ["change"]),
    M("change-no-nbr-test", "pipeline.change",
      "forest_hit = is_forest and ((dropped and nbr_fall >= nbr_drop_min) or nbr_fall >= grass_nbr_threshold)",
      "forest_hit = is_forest and (dropped or nbr_fall >= grass_nbr_threshold)",
      "NBR no longer has to fall with a full NDVI drop", ["change"]),
    M("change-no-confirmation", "pipeline.change",
      "confirmed[t] = flagged[t] & next_flag", "confirmed[t] = flagged[t]",
      "one flagging look is enough to confirm", ["change"]),
    M("change-cloud-breaks-chain", "pipeline.change",
      "next_flag = np.where(mon[t], flagged[t], next_flag)", "next_flag = flagged[t]",
      "a cloudy look between two flags breaks confirmation", ["change"]),
    M("change-high-strict", "pipeline.change",
      "(n_hits >= params.high_min_looks)", "(n_hits > params.high_min_looks)",
      "high needs four flagging looks instead of three", ["change"]),
    M("change-no-sensor-agreement", "pipeline.change",
      "agreed &= ~seen | (hits & this).any(axis=0)", "agreed &= True | seen",
      "high no longer needs every sensor family that saw the pixel to agree", ["change"]),
    M("change-s2-platforms-split", "pipeline.change",
      'for family in ("landsat", "sentinel-2"):', 'for family in ("landsat",):',
      "Sentinel-2A and 2B count as different sensor families", ["change"]),
    M("change-haze-ignores-ndvi", "pipeline.change",
      "and v_ndvi > haze_ndvi_min and v_mndwi < zero):", "and v_mndwi < zero):",
      "bare ground that brightened in blue is called haze", ["change"]),
    M("change-water-threshold", "pipeline.change",
      "water[p] = count > 0 and b_mndwi > zero", "water[p] = count > 0 and b_mndwi > 0.5",
      "permanent water needs a much higher MNDWI", ["change"]),
    M("change-latest-is-first", "pipeline.change",
      "latest = (n_looks - 1 - evidence_looks[::-1].argmax(axis=0))[None]", "latest = evidence_looks.argmax(axis=0)[None]",
      "the latest look of a change is its first: a mine felled before it was dug keeps reading as a clearing",
      ["change"]),
    M("change-no-grass-path", "pipeline.change",
      "or nbr_fall >= grass_nbr_threshold)", ")",
      "forest felled under a green cover (NDVI down by less than the threshold, NBR down a lot) is missed",
      ["change"]),
    M("change-grass-nbr-ignores-spread", "pipeline.change",
      "or nbr_fall >= grass_nbr_threshold)", "or nbr_fall >= grass_nbr_drop_min)",
      "a seasonal forest's dry look passes for forest felled under green cover (its NBR spread is ignored)",
      ["change"]),
    M("change-grass-path-any-cover", "pipeline.change",
      "forest_hit = is_forest and ((dropped", "forest_hit = count > 0 and ((dropped",
      "the NBR fall flags any ground, not only baseline forest",
      ["change"]),
    M("classify-no-river-sand", "pipeline.classify.sklearn_model",
      "rivers = advancing_banks(features) | river_sand(features, classes)", "rivers = advancing_banks(features)",
      "sand by the river that the model calls mining (a bar built over its growth) is issued as mining",
      ["banks"]),
    M("banks-river-sand-ignores-own-water", "pipeline.classify.banks",
      "return (near >= RIVER_NEAR_WATER_MIN) & (own_water < RIVER_OWN_WATER_MAX)",
      "return near >= RIVER_NEAR_WATER_MIN",
      "a pit by the river with ponds of its own is taken for the river's sand (and an other one silenced)",
      ["banks"]),
    M("features-latest-gain-without-median", "pipeline.features",
      'return float(values.mean() - spectral.get("water_share", 0.0) - spectral.get("sediment_share", 0.0))',
      "return float(values.mean())",
      "the gain is the latest look's share itself: single looks and composites count their mining ground twice",
      ["features"]),

    # --- mask --------------------------------------------------------------------------------
    M("mask-shadow-not-grown", "pipeline.mask",
      "SCL_CLOUDY = (SCL_SHADOW, SCL_CLOUD_MEDIUM", "SCL_CLOUDY = (SCL_CLOUD_MEDIUM",
      "cloud shadows are dropped but not buffered", ["mask"]),
    M("mask-qa-snow-kept", "pipeline.mask",
      "QA_DROP_BITS = (QA_FILL, QA_DILATED_CLOUD, QA_CIRRUS, QA_CLOUD, QA_SHADOW, QA_SNOW)",
      "QA_DROP_BITS = (QA_FILL, QA_DILATED_CLOUD, QA_CIRRUS, QA_CLOUD, QA_SHADOW)",
      "Landsat snow pixels count as clear", ["mask"]),
    M("mask-qa-shadow-kept", "pipeline.mask",
      "QA_DROP_BITS = (QA_FILL, QA_DILATED_CLOUD, QA_CIRRUS, QA_CLOUD, QA_SHADOW, QA_SNOW)",
      "QA_DROP_BITS = (QA_FILL, QA_DILATED_CLOUD, QA_CIRRUS, QA_CLOUD, QA_SNOW)",
      "Landsat cloud-shadow pixels are no longer in the drop list", ["mask"]),
    M("mask-qa-shadow-not-grown", "pipeline.mask",
      "QA_CLOUDY_BITS = (QA_DILATED_CLOUD, QA_CIRRUS, QA_CLOUD, QA_SHADOW)",
      "QA_CLOUDY_BITS = (QA_DILATED_CLOUD, QA_CIRRUS, QA_CLOUD)",
      "Landsat cloud shadows are dropped but not buffered", ["mask"]),
    M("mask-no-cloud-buffer", "pipeline.mask",
      "~_grow_lazy(flagged, int(round(cloud_buffer_m / resolution_m)))", "~_grow_lazy(flagged, 0)",
      "cloud flags are not grown by cloud_buffer_m", ["mask"]),
    M("mask-reflectance-nan-ignored", "pipeline.mask",
      "valid = valid & data[band].notnull()", "valid = valid",
      "a pixel with a NaN reflectance band is still clear", ["mask"]),
    M("mask-disk-smaller", "pipeline.mask",
      "(xx * xx + yy * yy) <= r * r", "(xx * xx + yy * yy) < r * r",
      "the buffer disk loses its edge pixels (a 20 m buffer reaches 10 m along the axes)", ["mask"]),
    M("mask-no-halo", "pipeline.mask",
      "depth={0: 0, 1: radius_px, 2: radius_px}", "depth={0: 0, 1: 0, 2: 0}",
      "buffers stop at dask chunk borders", ["mask"]),

    # --- scars -------------------------------------------------------------------------------
    M("scars-confirm-one-pixel", "pipeline.scars",
      "labels, np.arange(1, n + 1), core_edge**2)", "labels, np.arange(1, n + 1), 1)",
      "one confirmed pixel confirms a whole scar", ["scars"]),
    M("scars-core-in-pixels", "pipeline.scars",
      "return max(2, int(round(CORE_M / pixel_m)))", "return 3",
      "the core is 3 × 3 pixels at any resolution: at 30 m a 0.5 ha scar can never be found", ["scars"]),
    M("scars-low-area-factor-1", "pipeline.scars",
      "LOW_AREA_FACTOR = 2.0", "LOW_AREA_FACTOR = 1.0",
      "low-confidence scars need only the mapping unit", ["scars"]),
    M("scars-mmu-strict", "pipeline.scars",
      "keep &= counts * pixel_ha >= min_area_ha", "keep &= counts * pixel_ha > min_area_ha",
      "a scar of exactly the mapping unit is dropped", ["scars"]),
    M("scars-4-connectivity", "pipeline.scars",
      "CONNECTIVITY = np.ones((3, 3), dtype=bool)", "CONNECTIVITY = ndimage.generate_binary_structure(2, 1)",
      "diagonal neighbours split into separate scars", ["scars"]),
    M("scars-keep-thin-lines", "pipeline.scars",
      "keep = _solid(mask, labels, n, core_edge)", "keep = np.arange(n + 1) > 0",
      "one-pixel lines and specks without a 3x3 core become scars", ["scars"]),
    M("scars-no-isolation-rule", "pipeline.scars",
      "keep &= ~_isolated_and_unsure(", "keep &= True | _isolated_and_unsure(",
      "small isolated scars need no extra confirmation", ["scars"]),
    M("scars-zone-by-max", "pipeline.scars",
      '"zone_index": _majority(zone_index, labels, index)',
      '"zone_index": ndimage.maximum(zone_index, labels, index).astype(int)',
      "a scar's zone is the highest-numbered zone it touches, not the one holding most of it", ["scars"]),
    M("scars-first-look-latest", "pipeline.scars",
      '"first_look": _label_extremes(valid_first, labels, index, largest=False)',
      '"first_look": _label_extremes(np.where(first >= 0, first, -1), labels, index, largest=True)',
      "first detection is the latest pixel's first look, not the earliest", ["scars"]),

    # --- alerts ------------------------------------------------------------------------------
    M("alerts-id-grid-10m", "pipeline.alerts",
      "ID_GRID_M = 100.0", "ID_GRID_M = 10.0",
      "the id grid shrinks to 10 m: one pixel of jitter changes the id", ["alerts"]),
    M("alerts-area-units", "pipeline.alerts",
      '"area_ha": round(float(utm.iloc[i].area) / 1e4, 3)', '"area_ha": round(float(utm.iloc[i].area) / 1e3, 3)',
      "alert area in tenths of hectares (m2 / 1e3)", ["alerts"]),
    M("alerts-first-detected-last", "pipeline.alerts",
      '"first_detected": look_dates[scar.first_look]', '"first_detected": look_dates[scar.last_look]',
      "first_detected is the last look", ["alerts"]),
    M("alerts-items-first-look-only", "pipeline.alerts",
      '"source_items": sorted({item for t in looks for item in items_by_look[t]})',
      '"source_items": sorted(items_by_look[scar.first_look])',
      "source_items names only the first look's items", ["alerts"]),
    M("alerts-clockwise-exterior", "pipeline.alerts",
      "shapely.orient_polygons(geometry, exterior_cw=False)", "shapely.orient_polygons(geometry, exterior_cw=True)",
      "GeoJSON exteriors clockwise (RFC 7946 says counter-clockwise)", ["alerts"]),
    M("alerts-summary-ignores-area", "pipeline.alerts",
      'sel = alerts[(alerts["protected_area_id"] == zone.protected_area_id) & (alerts["zone"] == zone.zone)]',
      'sel = alerts[(alerts["zone"] == zone.zone)]',
      "summary.csv counts every area's alerts in each area's rows", ["alerts"]),

    # --- lifecycle ---------------------------------------------------------------------------
    M("lifecycle-any-growth-expanding", "pipeline.lifecycle",
      '* (1.0 + params.expanding_share)', '* (1.0 + 0 * params.expanding_share)',
      "any growth makes an alert expanding", ["lifecycle"]),
    M("lifecycle-first-detected-moves", "pipeline.lifecycle",
      'min(str(old["first_detected"]), str(detected.at[i, "first_detected"]))',
      'str(detected.at[i, "first_detected"])',
      "first_detected moves later when an alert is seen again", ["lifecycle"]),
    M("lifecycle-duplicate-ids", "pipeline.lifecycle",
      "    if candidate not in taken:\n        return candidate\n",
      "    return candidate\n",
      "a new alert whose id collides with a stored one reuses it (the collision path)", ["lifecycle"]),
    M("lifecycle-overlap-of-larger", "pipeline.lifecycle",
      "smaller = min(a.iloc[i].area, b.iloc[j].area)", "smaller = max(a.iloc[i].area, b.iloc[j].area)",
      "overlap judged against the larger polygon: a scar that grew a lot is issued as new", ["lifecycle"]),
    M("lifecycle-carried-as-new", "pipeline.lifecycle",
      'carried["status"] = "ongoing"', 'carried["status"] = "new"',
      "alerts issued before and not seen again are reported as new", ["lifecycle"]),

    # --- state -------------------------------------------------------------------------------
    M("state-processed-until-min", "pipeline.state",
      'return max(dt.date.fromisoformat(str(v)) for v in self.runs["window_end"])',
      'return min(dt.date.fromisoformat(str(v)) for v in self.runs["window_end"])',
      "the next window starts from the first run's end, not the last", ["state"]),
    M("state-no-lookback", "pipeline.state",
      "processed_until - dt.timedelta(days=lookback_days)", "processed_until",
      "late or reprocessed scenes before the last processed date are never looked at again", ["state"]),
    M("state-load-from-window-start", "pipeline.state",
      "load_start=min(monitor[0], start)", "load_start=start",
      "an incremental run loads only its window: earlier looks cannot confirm", ["state"]),
    M("state-missing-is-error", "pipeline.state",
      "    if not path.is_file():\n        return State(empty_alerts(), empty_history())\n",
      "",
      "a missing state store (first run) is treated as unreadable", ["state"]),
    M("state-stale-temporaries-kept", "pipeline.state",
      'for path in sorted(Path(out).rglob(".*.tmp*")):', 'for path in sorted(Path(out).rglob(".*.tmpx*")):',
      "temporaries of a killed run are never removed", ["state"]),

    # --- files -------------------------------------------------------------------------------
    M("files-no-cleanup-on-failure", "pipeline.files",
      "    finally:\n        if tmp is not None and not staged and os.path.exists(tmp):",
      "    finally:\n        if False:",
      "a writer that raises leaves its temporary file behind", ["files"]),

    # --- batch -------------------------------------------------------------------------------
    M("batch-overwrite-ignored", "pipeline.batch",
      "if n_new_items == 0 and not overwrite and state.processed_until is not None:",
      "if n_new_items == 0 and state.processed_until is not None:",
      "--overwrite does not redo a processed window", ["sequence"]),
    M("batch-expanding-in-new-file", "pipeline.batch",
      'new_alerts=seen[seen["status"] == "new"]', 'new_alerts=seen[seen["status"] != "ongoing"]',
      "alerts_new.geojson also holds expanding alerts", ["sequence"]),
    M("batch-alerts-file-this-run-only", "pipeline.batch",
      "alerts=sort_alerts(issued(cumulative))", "alerts=sort_alerts(issued(observed))",
      "alerts.geojson drops alerts issued by earlier runs and not seen again", ["sequence"]),

    # --- evaluate / train --------------------------------------------------------------------
    M("evaluate-z90", "pipeline.evaluate",
      "Z95 = 1.959964", "Z95 = 1.644854",
      "confidence intervals at 90 % labelled 95 %", ["evaluate"]),
    M("evaluate-producers-is-users", "pipeline.evaluate",
      "producers = float(p[j, k] / p_k[k]) if p_k[k] > 0 else float(\"nan\")",
      "producers = float(share[j, k])",
      "producer's accuracy computed as user's accuracy", ["evaluate"]),
    M("evaluate-found-by-largest-only", "pipeline.evaluate",
      "found = overlap.sum(axis=1) / ref_area >= min_overlap",
      "found = overlap.max(axis=1) / ref_area >= min_overlap",
      "a reference scar covered by several alerts together is counted as missed", ["evaluate"]),
    M("train-block-20km", "pipeline.train",
      "BLOCK_M = 2000.0", "BLOCK_M = 20000.0",
      "spatial CV blocks of 20 km instead of 2 km", ["evaluate"]),

    # --- source profiles ---------------------------------------------------------------------
    M("sources-pc-offset-strict", "pipeline.ingest",
      "baseline >= S2_BOA_OFFSET_BASELINE", "baseline > S2_BOA_OFFSET_BASELINE",
      "processing baseline 04.00 exactly gets no -0.1 offset", ["sources"]),
    M("sources-landsat-offset", "pipeline.ingest",
      "    scale=2.75e-5,\n    offset=-0.2,", "    scale=2.75e-5,\n    offset=-0.1,",
      "Landsat C2 L2 offset -0.1 instead of -0.2", ["sources"]),
    M("sources-raster-bands-need-both", "pipeline.ingest",
      'if "scale" in first or "offset" in first:', 'if "scale" in first and "offset" in first:',
      "an asset with only raster:bands scale falls back to the profile's offset too", ["sources"]),
    M("sources-no-signature", "pipeline.ingest",
      "        if profile.signature_asset in item.assets:\n            return profile",
      "        return profile",
      "Planetary Computer S2 items are read with the Earth Search profile", ["sources"]),
    M("sources-negative-threshold", "pipeline.ingest",
      "MAX_NEGATIVE_FRACTION = 0.2", "MAX_NEGATIVE_FRACTION = 0.9",
      "massively negative reflectance (a doubled offset) is accepted", ["sources"]),

    # --- report ------------------------------------------------------------------------------
    M("report-cell-not-escaped", "pipeline.report",
      "return f'<td data-v=\"{html.escape(str(value))}\">{html.escape(str(text))}</td>'",
      "return f'<td data-v=\"{html.escape(str(value))}\">{text}</td>'",
      "user text (area names) is written raw into the report's table", ["report"]),
    M("report-lang-ignored", "pipeline.report",
      "    t = TEXT[lang]\n", "    t = TEXT[\"es\"]\n",
      "the report is always in Spanish", ["report"]),
]

# Survivors that cannot be killed because they do not change behaviour a user can observe.
# id -> why. Only listed after reading the mutant and the code around it.
EQUIVALENT: dict[str, str] = {
    # n_base > 0 -> n_base >= 0 in the forest, water and vegetated masks: where n_base == 0 the
    # pixel has no clear baseline look, so nanmedians gives NaN for base_ndvi and base_mndwi, and
    # every comparison with NaN is False: the mask is False either way. Checked also on 40 random
    # blocks with unseen pixels, NaN looks and ties (benchmarks/mutation_equivalence_check.py).
    "gen-change-detect_block-n_base_0-ge": "n_base == 0 makes base_ndvi and base_mndwi NaN (no clear "
        "baseline look), and NaN >= forest_ndvi_min is False: forest is False either way",
    "gen-change-detect_block-n_base_0-ge-2": "n_base == 0 makes base_mndwi NaN, and NaN > 0 is False: "
        "water is False either way",
    "gen-change-detect_block-n_base_0-ge-3": "n_base == 0 makes base_ndvi NaN, and NaN >= vegetated_ndvi_min "
        "is False: vegetated is False either way",
    # evidence_looks = where(persistent, hits, pending) & (confidence > NONE): a pixel with
    # confidence NONE is not persistent (persistent pixels are set to NOMINAL or HIGH) and its
    # pending is False (pending requires confidence == LOW), so the last term is redundant and
    # >= NONE (always True) gives the same looks.
    "gen-change-detect_block-confidence_confidence_none-ge": "for a pixel of confidence NONE both "
        "alternatives of the where are already False (persistent pixels are NOMINAL or HIGH, pending needs "
        "LOW), so the `confidence > NONE` term is redundant and `>=` (always True) changes nothing",
}

GENERATE_IN: dict[str, tuple[str, ...]] = {
    "pipeline.change": ("detect_block", "hazy"),
    "pipeline.scars": ("find_scars", "object_confidence", "_isolated_and_unsure", "channel_belt"),
    "pipeline.lifecycle": ("match_alerts", "update_lifecycle"),
    "pipeline.state": ("resolve_window",),
}
GENERATE_TESTS = {"pipeline.change": ("change",), "pipeline.scars": ("scars",),
                  "pipeline.lifecycle": ("lifecycle",), "pipeline.state": ("state",)}
FLIP = {ast.GtE: (">=", ">"), ast.Gt: (">", ">="), ast.LtE: ("<=", "<"), ast.Lt: ("<", "<="),
        ast.Eq: ("==", "!="), ast.NotEq: ("!=", "==")}


# --- locating ----------------------------------------------------------------------------


def module_files(root: Path, module: str, module_map: dict[str, str]) -> list[Path]:
    names = [module_map[module]] if module in module_map else []
    names += list(MODULE_CANDIDATES.get(module, (module,)))
    files = []
    for name in names:
        rel = Path(*name.split("."))
        for path in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
            if path.is_file() and path not in files:
                files.append(path)
    return files


def locate(root: Path, mutant: Mutant, module_map: dict[str, str]) -> tuple[Path | None, str]:
    """The file that holds the mutant's snippet exactly once, and how it was found."""
    for path in module_files(root, mutant.module, module_map):
        count = path.read_text(encoding="utf-8").count(mutant.find)
        if count == 1:
            return path, "module"
        if count > 1:
            return None, f"snippet occurs {count} times in {path.relative_to(root)}"
    hits = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        count = path.read_text(encoding="utf-8").count(mutant.find)
        if count:
            hits.append((path, count))
    if len(hits) == 1 and hits[0][1] == 1:
        return hits[0][0], "search"
    if not hits:
        return None, "snippet not found in the package (the code changed: update the mutant)"
    return None, "snippet ambiguous: " + ", ".join(f"{p.relative_to(root)}×{c}" for p, c in hits)


def test_files(root: Path, groups: tuple[str, ...]) -> list[str]:
    files: list[str] = []
    for group in groups:
        for pattern in TEST_GROUPS[group]:
            if "::" in pattern:  # a node id: kept when its file exists
                if (root / pattern.split("::", 1)[0]).is_file() and pattern not in files:
                    files.append(pattern)
                continue
            for path in sorted(glob.glob(str(root / pattern))):
                rel = str(Path(path).relative_to(root))
                if rel not in files:
                    files.append(rel)
    return files


def generated_mutants(root: Path, module_map: dict[str, str]) -> list[Mutant]:
    """Boundary flips (>= ↔ >, <= ↔ <, == ↔ !=) of every one-operator comparison in GENERATE_IN."""
    out = []
    for module_rank, (module, functions) in enumerate(GENERATE_IN.items()):
        files = module_files(root, module, module_map)
        if not files:
            continue
        for path in files:
            source = path.read_text(encoding="utf-8")
            lines = source.splitlines(keepends=True)
            tree = ast.parse(source)
            for fn in ast.walk(tree):
                if not (isinstance(fn, ast.FunctionDef) and fn.name in functions):
                    continue
                for node in ast.walk(fn):
                    if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in FLIP):
                        continue
                    if node.lineno != node.end_lineno or node.left.end_lineno != node.lineno:
                        continue
                    old, new = FLIP[type(node.ops[0])]
                    line = lines[node.lineno - 1]
                    gap_start, gap_end = node.left.end_col_offset, node.comparators[0].col_offset
                    gap = line.encode()[gap_start:gap_end].decode()
                    if gap.strip() != old:
                        continue
                    mutated = (line.encode()[:gap_start] + gap.replace(old, new, 1).encode()
                               + line.encode()[gap_end:]).decode()
                    text = ast.get_source_segment(source, node) or ""
                    out.append(((module_rank, node.lineno, node.col_offset), Mutant(
                        id=f"gen-{module.rsplit('.', 1)[-1]}-{fn.name}-{re.sub(r'[^a-z0-9]+', '_', text.lower())[:40]}"
                           f"-{'ge' if new == '>=' else 'gt' if new == '>' else 'le' if new == '<=' else 'lt' if new == '<' else 'eq' if new == '==' else 'ne'}",
                        module=module, find=line, replace=mutated,
                        reason=f"boundary flip in {fn.name}: `{text}` → `{new}`",
                        tests=GENERATE_TESTS[module], origin="generated")))
            break  # the first file that exists is the module
    # in source order, so that the numbered ids (same text on several lines) do not depend on
    # how deep in the function each comparison sits
    out = [m for _, m in sorted(out, key=lambda pair: pair[0])]
    # drop duplicates (the same flip of the same line, e.g. a line that occurs twice); every
    # comparison of a line gets its own mutant; number ids that repeat (same text, other line)
    seen_flips, seen_ids, unique = set(), {}, []
    for m in out:
        if (m.find, m.replace) in seen_flips:
            continue
        seen_flips.add((m.find, m.replace))
        k = seen_ids[m.id] = seen_ids.get(m.id, 0) + 1
        unique.append(m if k == 1 else dataclasses.replace(m, id=f"{m.id}-{k}"))
    return unique


# --- running -----------------------------------------------------------------------------


def copy_repo(dest: Path) -> Path:
    def ignore(_dir, names):
        return {n for n in names if any(fnmatch.fnmatch(n, p) for p in COPY_IGNORE)}

    shutil.copytree(REPO, dest, ignore=ignore)
    return dest


def run_pytest(root: Path, files: list[str], timeout_s: float, extra_env: dict[str, str]) -> dict:
    """Run pytest on ``files`` inside ``root`` (a copy): its own package comes first on sys.path."""
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1", **extra_env)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider", "-m", "not notebooks",
           "--no-header", "-rfE", *files]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout_s)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        rc = None
    seconds = round(time.perf_counter() - start, 1)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", output or "", flags=re.M)
    if not failed:  # no short summary (e.g. a crash): read the failure header instead
        failed = re.findall(r"^_{3,} (\S.*?) _{3,}$", output or "", flags=re.M)
    return {"rc": rc, "seconds": seconds, "failed": failed[:3], "tail": (output or "")[-1500:]}


def check_import_path(root: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(root))
    found = subprocess.run([sys.executable, "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"], cwd="/",
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not Path(found).resolve().is_relative_to(root.resolve()):
        raise SystemExit(f"the copy's package is not the one imported ({found}); cannot mutate safely")


def status_of(result: dict) -> str:
    rc = result["rc"]
    if rc is None:
        return "timeout"
    if rc == 0:
        return "survived"
    if rc in (1, 2):  # 1: tests failed; 2: collection/import failed because of the mutant
        return "killed"
    return "error"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def score(records: list[dict]) -> dict:
    counted = [r for r in records if r["status"] in ("killed", "survived", "timeout")]
    killed = sum(r["status"] in ("killed", "timeout") for r in counted)
    equivalent = [r for r in counted if r["status"] == "survived" and r.get("equivalent")]
    return {
        "mutants": len(counted),
        "killed": sum(r["status"] == "killed" for r in counted),
        "timeout": sum(r["status"] == "timeout" for r in counted),
        "survived": sum(r["status"] == "survived" for r in counted),
        "equivalent": len(equivalent),
        "not_run": len(records) - len(counted),
        "score": round(killed / len(counted), 3) if counted else None,
        "score_excluding_equivalent": (round(killed / (len(counted) - len(equivalent)), 3)
                                       if len(counted) > len(equivalent) else None),
    }


def write_results(records: list[dict], meta: dict, results_json: Path | None = None) -> None:
    results_json = results_json or RESULTS_JSON
    results_md = results_json.with_suffix(".md")
    records = sorted(records, key=lambda r: (r["origin"] != "issue13", r["origin"], r["id"]))
    for r in records:  # explanations are read from EQUIVALENT each time, also for merged entries
        r["equivalent"] = EQUIVALENT.get(r["id"]) if r["status"] == "survived" else None
    summary = score(records)
    survivors = [r for r in records if r["status"] == "survived"]
    doc = {**meta, **summary, "survivors": [{"id": r["id"], "file": r.get("file"), "reason": r["reason"],
                                              "equivalent": r.get("equivalent")} for r in survivors],
           "results": records}
    tmp = results_json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, results_json)

    lines = [
        "# Mutation testing results",
        "",
        f"Commit `{meta['commit'][:12]}`, {meta['finished']}, {meta['wall_seconds']:.0f} s wall "
        f"(`{meta['command']}`).",
        "",
        f"**Score {summary['score']}** over {summary['mutants']} mutants: {summary['killed']} killed, "
        f"{summary['timeout']} timed out (counted as killed), {summary['survived']} survived "
        f"({summary['equivalent']} of them equivalent; score excluding equivalent mutants: "
        f"{summary['score_excluding_equivalent']}). Not run or not applicable: {summary['not_run']}.",
        "",
        "| mutant | where | change | status | caught by / note |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        note = (r.get("equivalent") or "") if r["status"] == "survived" else (
            ", ".join(r.get("failed", [])[:1]) or r.get("note", ""))
        where = f"{r.get('file') or r['module']}:{r.get('line') or ''}"
        lines.append(f"| `{r['id']}` | {where} | {r['reason']} | {r['status']} | {note.replace('|', '/')} |")
    runs = sorted({(r["run"]["started"], r["run"]["commit"]) for r in records if r.get("run")})
    if len(runs) > 1:
        lines += ["", "Results merged from several runs (each mutant's `run` in the JSON says which):", ""]
        lines += [f"- started {started}, commit `{commit[:12]}`: "
                  f"{sum(1 for r in records if r.get('run', {}).get('started') == started)} mutants"
                  for started, commit in runs]
    if survivors:
        lines += ["", "## Survivors", ""]
        for r in survivors:
            lines.append(f"- `{r['id']}` ({r.get('file')}): {r['reason']}. "
                         + (f"Equivalent: {r['equivalent']}" if r.get("equivalent") else "**Not explained yet.**"))
    results_md.write_text("\n".join(lines) + "\n", encoding="utf-8")


def merge_records(*sources: dict[str, dict]) -> dict[str, dict]:
    """Later sources win, except that a mutant "not run" never hides a result an earlier run had."""
    merged: dict[str, dict] = {}
    for source in sources:
        for key, record in source.items():
            if record["status"] in ("not run",) and key in merged:
                continue
            merged[key] = record
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated mutant ids (or fnmatch patterns)")
    parser.add_argument("--generate", action="store_true", help="add operator-boundary mutants (GENERATE_IN)")
    parser.add_argument("--list", action="store_true", help="list the mutants and where they apply; run nothing")
    parser.add_argument("--merge", action="append", default=[], nargs="?", const="", metavar="FILE",
                        help="keep the entries of the results file (or of FILE) that this run does not redo")
    parser.add_argument("--out", type=Path, default=RESULTS_JSON,
                        help="results file (JSON; the markdown summary goes beside it as .md)")
    parser.add_argument("--module-map", action="append", default=[], metavar="OLD=NEW",
                        help="where a module lives now, e.g. pipeline.mask=pipeline.sources.mask")
    parser.add_argument("--timeout-factor", type=float, default=3.0,
                        help="a mutant's deadline: this times the unmutated run of its tests, plus 30 s")
    parser.add_argument("--budget-minutes", type=float, default=0.0, help="stop starting mutants after this")
    parser.add_argument("--group", action="append", default=[], metavar="TOPIC=GLOB[,GLOB]",
                        help="replace the test files of a topic, e.g. mask=tests/test_mask.py")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: rewrite the results from --merge files (e.g. after adding explanations)")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="do not run the unmutated tests first (when a recent run showed them green); "
                             "every mutant then gets a 900 s deadline")
    parser.add_argument("--keep-copy", action="store_true", help="leave the temporary copy for inspection")
    args = parser.parse_args(argv)
    module_map = dict(item.split("=", 1) for item in args.module_map)
    for item in args.group:
        topic, globs = item.split("=", 1)
        TEST_GROUPS[topic] = tuple(g for g in globs.split(",") if g)

    mutants = list(MUTANTS)
    if args.generate:
        mutants += generated_mutants(REPO, module_map)
    ids = [m.id for m in mutants]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise SystemExit(f"duplicate mutant ids: {sorted(dupes)}")
    if args.only:
        patterns = [p.strip() for p in args.only.split(",") if p.strip()]
        # in the order of the patterns (the first that matches), so that a time budget cuts the last ones
        rank = {m.id: next((i for i, p in enumerate(patterns) if fnmatch.fnmatch(m.id, p)), None) for m in mutants}
        mutants = sorted((m for m in mutants if rank[m.id] is not None), key=lambda m: rank[m.id])
        if not mutants:
            raise SystemExit(f"no mutant matches {args.only!r}")

    if args.list:
        for m in mutants:
            path, how = locate(REPO, m, module_map)
            where = f"{path.relative_to(REPO)} ({how})" if path else f"NOT APPLICABLE: {how}"
            print(f"{m.id:40s} {where:45s} tests: {' '.join(test_files(REPO, m.tests)) or 'NONE'}")
        return 0

    t0 = time.perf_counter()
    if args.report_only:
        previous = {}
        for source in args.merge:
            path = Path(source) if source else args.out
            previous = merge_records(previous, {r["id"]: r for r in json.loads(path.read_text(encoding="utf-8"))["results"]})
        meta = json.loads(Path(args.merge[0] or args.out).read_text(encoding="utf-8"))
        meta = {k: meta[k] for k in ("commit", "command", "started", "finished", "wall_seconds") if k in meta}
        write_results(list(previous.values()), meta, args.out)
        print(json.dumps(score(list(previous.values()))))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="cec-mutation-"))
    root = copy_repo(tmp / "repo")
    check_import_path(root)
    records: list[dict] = []
    previous = {}
    for source in args.merge:
        path = Path(source) if source else args.out
        if path.is_file():
            previous = merge_records(previous, {r["id"]: r for r in json.loads(path.read_text(encoding="utf-8"))["results"]})
    previous = {k: v for k, v in previous.items() if k in {m.id for m in MUTANTS} or k.startswith("gen-")}
    meta = {"commit": git_commit(), "command": "python benchmarks/mutation.py " + " ".join(argv or sys.argv[1:]),
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}

    def save() -> None:
        merged = merge_records(previous, {r["id"]: r for r in records})
        write_results(list(merged.values()), {**meta, "finished": dt.datetime.now(dt.timezone.utc).isoformat(
            timespec="seconds"), "wall_seconds": round(time.perf_counter() - t0, 1)}, args.out)

    try:
        # unmutated runs of every test group the selection needs: they must pass, and set the deadlines
        baseline: dict[tuple[str, ...], dict] = {}
        for groups in sorted({m.tests for m in mutants}):
            files = test_files(root, groups)
            if not files:
                continue
            if args.skip_baseline:
                baseline[groups] = {"seconds": (900 - 30) / args.timeout_factor}
                continue
            result = run_pytest(root, files, timeout_s=1800, extra_env={})
            print(f"baseline {'+'.join(groups):24s} {result['seconds']:6.1f} s  rc {result['rc']}", flush=True)
            if result["rc"] != 0:
                print(result["tail"], file=sys.stderr)
                raise SystemExit(f"the tests {files} fail without a mutant; fix them first")
            baseline[groups] = result

        for n, m in enumerate(mutants, 1):
            record = {"id": m.id, "module": m.module, "origin": m.origin, "reason": m.reason,
                      "find": m.find, "replace": m.replace, "equivalent": EQUIVALENT.get(m.id),
                      "run": {"commit": meta["commit"], "started": meta["started"]}}
            if args.budget_minutes and time.perf_counter() - t0 > args.budget_minutes * 60:
                records.append({**record, "status": "not run", "note": "time budget spent"})
                continue
            path, how = locate(root, m, module_map)
            files = test_files(root, m.tests)
            if path is None:
                records.append({**record, "status": "not applicable", "note": how})
                print(f"[{n}/{len(mutants)}] {m.id}: not applicable ({how})", flush=True)
                continue
            if not files:
                records.append({**record, "status": "not applicable", "note": f"no test files for {m.tests}"})
                continue
            original = path.read_text(encoding="utf-8")
            mutated = original.replace(m.find, m.replace, 1)
            try:
                compile(mutated, str(path), "exec")
            except SyntaxError as err:
                records.append({**record, "status": "invalid", "note": f"mutant does not compile: {err}"})
                continue
            record.update(file=str(path.relative_to(root)), line=original[: original.index(m.find)].count("\n") + 1,
                          tests=files)
            deadline = args.timeout_factor * baseline[m.tests]["seconds"] + 30
            try:
                path.write_text(mutated, encoding="utf-8")
                result = run_pytest(root, files, timeout_s=deadline, extra_env={})
            finally:
                path.write_text(original, encoding="utf-8")
            record.update(status=status_of(result), seconds=result["seconds"], failed=result["failed"])
            if record["status"] == "error":
                record["note"] = result["tail"][-600:]
            records.append(record)
            print(f"[{n}/{len(mutants)}] {m.id:40s} {record['status']:9s} {result['seconds']:6.1f} s "
                  f"{(result['failed'] or [''])[0]}", flush=True)
            save()
    finally:
        save()
        if not args.keep_copy:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"copy kept at {root}")
    summary = score(list(merge_records(previous, {r["id"]: r for r in records}).values()))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
