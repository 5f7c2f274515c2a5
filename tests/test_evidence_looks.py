"""Evidence looks are chosen by how much of the scar they show clear, nodata counted as not clear."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.outputs.looks import LookCoverage, choose_looks, scar_coverage


def test_coverage_counts_nodata_as_not_clear():
    scar = np.zeros((10, 10), bool)
    scar[2:8, 2:8] = True  # 36 px
    valid = np.ones_like(scar)
    valid[:, 5:] = False  # half the scar is outside the swath
    clear = valid.copy()
    coverage, clear_share = scar_coverage(clear, valid, scar)
    assert coverage == pytest.approx(18 / 36)  # what the chip shows of the scar
    assert clear_share == 1.0  # the old measure: "98 % clear" of a half-empty chip


def test_choose_looks_skips_a_half_empty_nearest_look():
    looks = [LookCoverage(0, "2019-06-01", 0.97, 0.97), LookCoverage(1, "2019-07-01", 0.45, 0.98),
             LookCoverage(2, "2019-08-01", 0.31, 0.97), LookCoverage(3, "2019-09-01", 0.95, 0.95),
             LookCoverage(4, "2019-10-01", 0.99, 0.99)]
    (before, why_before), (after, why_after) = choose_looks(looks, "2019-08-01")
    assert before.index == 0 and "1 nearer look(s) covered less" in why_before
    assert after.index == 3 and "first look after" in why_after and "95%" in why_after


def test_choose_looks_falls_back_to_the_best_and_says_so():
    looks = [LookCoverage(0, "2019-06-01", 0.5, 1.0), LookCoverage(1, "2019-07-01", 0.6, 1.0),
             LookCoverage(2, "2019-08-01", 0.7, 1.0), LookCoverage(3, "2019-09-01", 0.7, 1.0)]
    (before, why_before), (after, why_after) = choose_looks(looks, "2019-08-01")
    assert before.index == 1 and "best of 2 read: 60%" in why_before
    assert after.index == 2  # ties go to the look nearest the change
    with pytest.raises(ValueError):
        choose_looks(looks[:2], "2019-01-01")
