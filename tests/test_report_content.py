"""report.html's content without a browser: every alert's values, the summary, both languages, and
user text (area names, ids) escaped so that it is shown, never run."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from pipeline.outputs.report import report_html

HOSTILE = '<script>alert("x")</script> & Co\'s "Reserva"'


class Page(HTMLParser):
    """The parts of the page a reader sees: texts per element id/class, table cells, scripts."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self.table = None
        self.cell = None
        self.scripts = 0
        self.html_lang = None
        self.text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.html_lang = attrs.get("lang")
        if tag == "script":
            self.scripts += 1
        if tag == "table":
            self.table = attrs.get("id")
            self.rows[self.table] = []
        if tag == "tr" and self.table:
            self.rows[self.table].append([])
        if tag in ("td", "th") and self.table:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.rows[self.table][-1].append("".join(self.cell).strip())
            self.cell = None
        if tag == "table":
            self.table = None

    def handle_data(self, data):
        self.text.append(data)
        if self.cell is not None:
            self.cell.append(data)


def inputs(name: str = "Reserva Nacional Tambopata"):
    utm = [shapely.box(384000, 8560000, 384200, 8560100), shapely.box(385000, 8561000, 385300, 8561300)]
    alerts = gpd.GeoDataFrame({
        "alert_id": ["test-RN09-aaaa", "test-RN09-bbbb"], "status": ["new", "ongoing"],
        "class": ["mining", "clearing"], "probability": [0.912, 0.7], "confidence": ["high", "nominal"],
        "area_ha": [2.0, 9.0], "first_detected": ["2019-08-26", "2020-01-10"],
        "last_observed": ["2021-11-30", "2021-11-30"], "protected_area_name": [name, name],
        "zone": ["inside", "buffer"], "centroid_lat": [-12.9, -12.89], "centroid_lon": [-69.9, -69.89],
    }, geometry=gpd.GeoSeries(utm, crs=32719).to_crs(4326).to_numpy(), crs=4326)
    zones = gpd.GeoDataFrame({"zone": ["inside", "buffer"]},
                             geometry=[shapely.box(383000, 8559000, 386000, 8562000),
                                       shapely.box(382000, 8558000, 387000, 8563000)], crs=32719)
    summary = pd.DataFrame([{"protected_area_id": "RN09", "protected_area_name": name, "zone": "inside",
                             "alerts_mining": 1, "ha_mining": 2.0, "alerts_total": 1, "ha_total": 2.0}])
    info = {"run_id": "test-20220101T000000Z", "window": ("2021-01-01", "2021-12-31"), "n_new": 1}
    return alerts, zones, summary, info


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    return parser


@pytest.mark.parametrize("lang, title, window", [("es", "Reporte de alertas", "Ventana de monitoreo"),
                                                 ("en", "Alert report", "Monitor window")])
def test_report_lists_every_alert_with_its_values_in_the_chosen_language(lang, title, window):
    alerts, zones, summary, info = inputs()
    page = report_html(alerts, zones, summary, info, {}, lang)
    parsed = parse(page)
    assert parsed.html_lang == lang
    text = " ".join(" ".join(parsed.text).split())
    assert f"{title}: test-20220101T000000Z" in text and f"{window}: 2021-01-01 … 2021-12-31" in text
    assert ("2 alertas en total, 1 nuevas" if lang == "es" else "2 alerts in total, 1 new") in text
    other = {"es": "Alert report", "en": "Reporte de alertas"}[lang]
    assert other not in text, "one language per page"
    # headers and values follow the language (output.lang); ids, names and numbers as they are
    from pipeline.outputs.evidence import LABELS
    from pipeline.outputs.report import TEXT

    names, labels = TEXT[lang]["columns"], LABELS[lang]
    header, *rows = parsed.rows["alerts"]
    assert header[:3] == [names["alert_id"], names["status"], names["class"]] and len(rows) == len(alerts)
    for row, alert in zip(rows, alerts.to_dict("records")):
        assert row[:3] == [alert["alert_id"], labels["statuses"][alert["status"]], labels["classes"][alert["class"]]]
        assert row[header.index(names["area_ha"])] == f"{alert['area_ha']:g}"
        assert row[header.index(names["probability"])] == f"{alert['probability']:g}"
        assert row[header.index(names["confidence"])] == labels["confidences"][alert["confidence"]]
        assert row[header.index(names["zone"])] == labels["zones"][alert["zone"]]
        for column in ("first_detected", "protected_area_name"):
            assert row[header.index(names[column])] == alert[column], column
    summary_header, *summary_rows = parsed.rows["summary"]
    assert len(summary_header) == len(summary.columns) and len(summary_rows) == 1
    summary_names = TEXT[lang]["summary_columns"]
    assert summary_rows[0][summary_header.index(summary_names["alerts_total"])] == "1"


def test_user_text_is_escaped_in_the_table_the_summary_and_the_map():
    alerts, zones, summary, info = inputs(HOSTILE)
    alerts.loc[0, "alert_id"] = 'x"><img src=x onerror=alert(1)>'
    zones.loc[0, "zone"] = "<b>inside</b>"
    page = report_html(alerts, zones, summary, info, {}, "en")
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>inside</b>" not in page
    parsed = parse(page)
    assert parsed.scripts == 1, "only the page's own sorting script"
    cells = [c for r in parsed.rows["alerts"][1:] for c in r] + [c for r in parsed.rows["summary"][1:] for c in r]
    assert HOSTILE in cells, "the name is shown as text, whole"
    assert 'x"><img src=x onerror=alert(1)>' in cells
    assert html.escape(HOSTILE) in page
    # no attribute is broken out of: every data-v value is a quoted, escaped string
    for value in re.findall(r'data-v="([^"]*)"', page):
        assert "<" not in value and ">" not in value


def test_chips_are_inlined_for_alerts_that_have_them_only():
    alerts, zones, summary, info = inputs()
    png = b"\x89PNG\r\n\x1a\nfake"
    page = report_html(alerts, zones, summary, info, {"test-RN09-aaaa": {"before": png, "after": png}}, "es")
    assert page.count("data:image/png;base64,") == 2
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", page), "nothing is fetched"
