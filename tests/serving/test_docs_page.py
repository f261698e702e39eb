"""The docs page: flushcast's own, drawn from packaged files, in a dialect its Swagger UI reads.

In-process here; `test_server.py` loads it in headless Chromium from a real server and checks
every request the browser makes stays on the service.
"""

from __future__ import annotations

import json
import re

from starlette.testclient import TestClient


def test_the_page_names_flushcast_and_loads_only_from_the_service(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "<title>flushcast 0.1.0: API</title>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r"(src|href|url)\s*[=:]\s*\"?(https?:)?//", page.text)
    assert "validatorUrl: null" in page.text  # Swagger UI would send the spec out otherwise
    for asset in re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', page.text):
        assert client.get(asset).status_code == 200, asset


def test_the_spec_is_flushcasts_without_outside_links(client: TestClient) -> None:
    spec = client.get("/docs.json").json()
    assert spec["info"]["title"] == "flushcast" and spec["info"]["version"] == "0.1.0"
    assert "BentoML" not in json.dumps(spec["info"]) and "contact" not in spec["info"]
    assert not re.search(r"https?://", json.dumps(spec))  # no badge images, no outside hosts
    for route in ("/predict", "/predict_batch", "/explain"):
        assert spec["paths"][route]["post"]["summary"]


def test_the_page_reads_the_spec_in_the_dialect_of_its_swagger_ui(client: TestClient) -> None:
    shown = client.get("/docs-ui.json").json()
    assert shown["openapi"] == "3.0.3"
    text = json.dumps(shown)
    assert '"null"' not in text  # 3.0 has no null type: nullable instead
    served = client.get("/docs.json").json()
    assert served["openapi"] == "3.1.0" and set(shown["paths"]) == set(served["paths"])
    bar = shown["components"]["schemas"]["Bar"]["properties"]
    assert bar["oi_usd"]["nullable"] is True and bar["oi_usd"]["type"] == "number"
