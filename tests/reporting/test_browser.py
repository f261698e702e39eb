"""The report as a person sees it: loaded in headless Chromium, every image drawn, no errors.

Needs Debian's `chromium`; skipped with the reason when it is absent, unless
FLUSHCAST_BROWSER_TEST=required (CI), where its absence is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flushcast.reporting.browser import check_page, executable
from tests.reporting.common import HORIZONS

pytestmark = pytest.mark.slow

PNG = b"\x89PNG\r\n\x1a\n"
REQUIRED = os.environ.get("FLUSHCAST_BROWSER_TEST") == "required"
"""CI sets this, so a missing browser fails the run instead of skipping the test."""


@pytest.fixture(autouse=True)
def _chromium() -> None:
    if executable() is None:
        message = "chromium not installed (Debian: apt-get install chromium)"
        if REQUIRED:
            pytest.fail(f"{message}; FLUSHCAST_BROWSER_TEST=required")
        pytest.skip(message)


def test_report_loads_with_its_images_and_no_errors(report_file: Path, tmp_path: Path) -> None:
    check = check_page(report_file, width=1280)
    assert check.errors == []
    assert len(check.images) == 2 * len(HORIZONS) + 2
    assert check.broken_images == []
    assert all(image["width"] >= 300 for image in check.images)
    # The layout fits the window: nothing pushes the page wider than the screen.
    assert check.width == 1280
    assert check.height > 2000
    assert check.screenshot.startswith(PNG)
    (tmp_path / "report.png").write_bytes(check.screenshot)


def test_the_check_catches_broken_pages(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><body><p>broken</p>"
        '<img src="missing.png" alt="gone">'
        "<script>console.error('drawn wrong'); undefinedFunction();</script>"
        "</body></html>"
    )
    check = check_page(page)
    assert [image["alt"] for image in check.broken_images] == ["gone"]
    assert any("drawn wrong" in error for error in check.errors)
    assert any("undefinedFunction" in error for error in check.errors)
    assert any("missing.png" in error for error in check.errors)
