"""report.html: self-contained, renders in headless Chromium without errors, one row per alert."""

from __future__ import annotations

import re

import pytest

from .browser import chromium, severe_console_errors


@pytest.fixture(scope="module")
def report(run_sequence):
    _, _, results, snapshots = run_sequence
    return results[2], snapshots[2] / "report.html"


def test_report_needs_no_network(report):
    result, path = report
    text = path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", text), "the report must not fetch anything"
    assert text.count('class="alert"') == len(result.alerts)
    assert text.count("data:image/png;base64,") == 2 * len(result.alerts) + 1  # chips and the map background
    assert "<svg" in text and 'id="summary"' in text
    assert 'id="scalebar"' in text and 'id="legend"' in text and 'id="background"' in text
    for alert_id in result.alerts["alert_id"]:  # every row links to its ficha
        assert f'href="evidence/{alert_id}/ficha.html"' in text
        assert (path.parent / "evidence" / alert_id / "ficha.html").is_file()
    assert ">Reporte de alertas" in text and ">superficie (ha)<" in text  # labels follow output.lang


def test_report_renders_in_headless_chromium_with_one_row_per_alert(report, tmp_path):
    from selenium.webdriver.common.by import By

    result, path = report
    with chromium(tmp_path / "profile") as driver:
        driver.get(path.as_uri())
        rows = driver.find_elements(By.CSS_SELECTOR, "#alerts tbody tr")
        assert len(rows) == len(result.alerts)
        ids = [r.get_attribute("data-id") for r in rows]
        assert sorted(ids) == sorted(result.alerts["alert_id"])
        map_box = driver.find_element(By.ID, "map").rect
        assert map_box["width"] > 300 and map_box["height"] > 100
        images = driver.find_elements(By.CSS_SELECTOR, "#alerts img")
        assert images and all(driver.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images)
        # the map: a scale bar, a legend naming zones and classes in Spanish, the run's imagery behind
        assert driver.find_element(By.ID, "scalebar").text.endswith(("m", "km"))
        legend = driver.find_element(By.ID, "legend").text
        for label in ("dentro del área", "zona de amortiguamiento", "minería", "deforestación"):
            assert label in legend
        background = driver.find_element(By.ID, "background")
        assert background.rect["width"] == map_box["width"]
        assert driver.execute_script(
            "return arguments[0].getAttribute('href').startsWith('data:image/png;base64,')", background)
        # sorting by area (column 6) puts the largest alert first on the second click
        header = driver.find_elements(By.CSS_SELECTOR, "#alerts th")[5]
        header.click()
        header.click()
        first = driver.find_element(By.CSS_SELECTOR, "#alerts tbody tr").get_attribute("data-id")
        assert first == result.alerts.sort_values("area_ha").iloc[-1]["alert_id"]
        errors = severe_console_errors(driver)
        assert errors == []
        # each row links to its ficha, which opens and shows its chips
        link = driver.find_element(By.CSS_SELECTOR, f'#alerts tr[data-id="{first}"] a')
        link.click()
        assert driver.current_url.endswith(f"evidence/{first}/ficha.html")
        assert "Ficha técnica" in driver.find_element(By.TAG_NAME, "h1").text
        chips = driver.find_elements(By.CSS_SELECTOR, ".chips img")
        assert len(chips) == 4 and all(driver.execute_script("return arguments[0].naturalWidth", i) > 0
                                       for i in chips)
        text = driver.find_element(By.TAG_NAME, "body").text
        assert "Confianza" in text and not any(f"Confianza {v}" in text for v in ("high", "low", "nominal"))
        assert severe_console_errors(driver) == []
