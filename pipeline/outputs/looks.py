"""Which looks an evidence bundle shows (pure).

A chip is evidence only where it shows the scar. So a look is judged over the scar's own
pixels, with nodata (outside the swath, a missing tile) counted as *not clear*:

- ``coverage``: clear scar pixels / all scar pixels (what the chip shows of the scar);
- ``clear_share``: clear scar pixels / scar pixels with data (the old, optimistic measure,
  kept in the manifest for comparison).

The "before" look is the latest look before ``first_detected`` whose coverage reaches
``min_coverage``; the "after" look the earliest from ``first_detected`` on. When no look on a
side reaches it, the look with the best coverage on that side is taken (nearest to the change
on ties) and the reason says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_COVERAGE = 0.9


@dataclass(frozen=True)
class LookCoverage:
    """How well one look shows the scar."""

    index: int
    """Look index in the area's time series."""
    date: str
    """ISO date of the look."""
    coverage: float
    """Clear scar pixels / scar pixels (nodata is not clear)."""
    clear_share: float
    """Clear scar pixels / scar pixels with data."""


def scar_coverage(clear: np.ndarray, valid: np.ndarray, scar: np.ndarray) -> tuple[float, float]:
    """``(coverage, clear_share)`` of one look over the boolean ``scar`` region (same shapes)."""
    n_scar = int(scar.sum())
    n_clear = int((clear & valid & scar).sum())
    n_valid = int((valid & scar).sum())
    return (n_clear / n_scar if n_scar else 0.0), (n_clear / n_valid if n_valid else 0.0)


def _pick(side: list[LookCoverage], nearest_first: list[LookCoverage], min_coverage: float,
          when: str) -> tuple[LookCoverage, str]:
    for look in nearest_first:
        if look.coverage >= min_coverage:
            nearer = nearest_first.index(look)
            skipped = f"; {nearer} nearer look(s) covered less" if nearer else ""
            return look, (f"{'last' if when == 'before' else 'first'} look {when} the change that shows "
                          f"{look.coverage:.0%} of the scar clear (≥ {min_coverage:.0%}){skipped}")
    best = max(nearest_first, key=lambda lk: lk.coverage)  # max keeps the first (nearest) of ties
    return best, (f"no look {when} the change shows {min_coverage:.0%} of the scar clear; "
                  f"best of {len(side)} read: {best.coverage:.0%}")


def choose_looks(looks: list[LookCoverage], first_detected: str,
                 min_coverage: float = MIN_COVERAGE) -> tuple[tuple[LookCoverage, str], tuple[LookCoverage, str]]:
    """The before and after looks with the reason each was chosen.

    Raises ``ValueError`` when either side has no look at all.
    """
    before = sorted((lk for lk in looks if lk.date < first_detected), key=lambda lk: lk.date, reverse=True)
    after = sorted((lk for lk in looks if lk.date >= first_detected), key=lambda lk: lk.date)
    if not before or not after:
        raise ValueError(f"no look before and after {first_detected}")
    return _pick(before, before, min_coverage, "before"), _pick(after, after, min_coverage, "after")
