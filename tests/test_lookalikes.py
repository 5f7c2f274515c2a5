"""Look-alikes of forest loss raise no enforcement alert.

Each scene holds no planted scar, only things that change the imagery without anybody
clearing forest: a river with migrating sandbars and an eroding bank, heavy cloud with
unflagged soft edges, haze and shadows, a swath edge, a strongly seasonal canopy and old
clearings regrowing. Decisions:

- river channels and sandbars, clouds, haze, shadows, swath edges, phenology and old clearings
  produce **nothing** (the pixel was not forest in the baseline, or the look is not trusted, or
  the drop is within the pixel's own variability and not confirmed);
- bank erosion is real but natural forest loss. By default it is not issued
  (``detection.natural_loss: suppress``); asked for (``other``) it is issued as ``other``, never as
  mining or clearing: an analyst may want to know that a bank is retreating (dredges
  upstream cause it too), but it is not a ``mining`` or ``clearing`` field trip.
"""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import pytest

from pipeline.testing import scene as demo
from pipeline.config import load_config
from pipeline.run import run

from .conftest import DEMO_DATA, small_spec, write_config

ENFORCEMENT = {"mining", "clearing"}


def lookalike_spec(**options) -> demo.SceneSpec:
    """The small test window with nothing planted, plus the given look-alike options."""
    return dataclasses.replace(small_spec(seed=23), use_amw=False, n_clearings=0, n_small_clearings=0,
                               extra_scars=(), **options)


SCENES = {
    "river": lookalike_spec(bank_erosion_m=60.0, bank_erosion_sites=2),
    "sky": lookalike_spec(cloud_fraction=0.5, seed=31),
    "seasons": lookalike_spec(phenology_amplitude=4.0, n_old_clearings=3),
}


@pytest.fixture(scope="module", params=sorted(SCENES))
def lookalike_run(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"lookalike-{request.param}")
    demo.generate_scene(SCENES[request.param], folder / "scene", DEMO_DATA)
    # No dask client: the threaded scheduler is enough for a small scene and starts faster.
    result = run(load_config(write_config(folder / "run", folder / "scene")))
    lookalikes = gpd.read_file(folder / "scene" / "lookalikes.geojson").set_crs(32719, allow_override=True)
    return request.param, result.alerts.to_crs(32719), lookalikes


def test_lookalikes_raise_no_enforcement_alert(lookalike_run):
    name, alerts, lookalikes = lookalike_run
    expected = {"river": {"river", "bank_erosion", "swath_edge"}, "sky": {"river", "swath_edge"},
                "seasons": {"river", "swath_edge", "old_clearing"}}[name]
    assert expected <= set(lookalikes["kind"]), "the scene must hold its look-alikes"
    wrong = alerts[alerts["class"].isin(ENFORCEMENT)]
    assert wrong.empty, f"{name}: {len(wrong)} mining/clearing alerts on look-alikes: {wrong[['class', 'area_ha', 'probability']].to_dict('records')}"


def test_no_look_alike_is_alerted_by_default(lookalike_run):
    """Eroding banks included: natural loss is not an enforcement matter (detection.natural_loss)."""
    name, alerts, _ = lookalike_run
    assert alerts.empty, f"{name}: {alerts[['class', 'area_ha']].to_dict('records')}"


def test_bank_erosion_is_issued_as_other_when_asked(tmp_path):
    demo.generate_scene(SCENES["river"], tmp_path / "scene", DEMO_DATA)
    config = write_config(tmp_path / "run", tmp_path / "scene", **{"detection.natural_loss": "other"})
    alerts = run(load_config(config)).alerts.to_crs(32719)
    erosion = gpd.read_file(tmp_path / "scene" / "lookalikes.geojson").set_crs(32719, allow_override=True)
    erosion = erosion[erosion["kind"] == "bank_erosion"].union_all()
    assert len(alerts) >= 1, "the eroding bank should be seen when natural loss is asked for"
    for _, alert in alerts.iterrows():
        share = alert.geometry.intersection(erosion).area / alert.geometry.area
        assert share >= 0.5, f"alert {alert.alert_id} lies mostly off the eroding bank"
        assert alert["class"] == "other", f"bank erosion alerted as {alert['class']}"


def test_a_bank_is_told_from_a_pit_beside_the_river_by_how_it_advanced():
    import pandas as pd

    from pipeline.classify import advancing_banks

    scars = pd.DataFrame({
        "near_water_fraction": [0.9, 0.9, 0.3, 0.9, 0.9],
        "near_river_fraction": [0.6, 0.9, 0.3, 0.9, 0.0],
        "onset_water_corr": [0.8, 0.0, 0.8, 0.8, 0.8],
        "onset_spread_looks": [2.0, 2.0, 2.0, 0.2, 2.0],
    })
    # Bank taken look after look; pit beside the river (all at once, no gradient); inland front;
    # a strip by the river cleared in one go; a pit growing outward from its own old ponds look
    # after look (by water, advancing from it, but the water is no river).
    assert advancing_banks(scars).tolist() == [True, False, False, False, False]
    assert not advancing_banks(scars.drop(columns="onset_water_corr")).any()
    # A table that cannot tell a river from ponds forces nothing.
    assert not advancing_banks(scars.drop(columns="near_river_fraction")).any()
