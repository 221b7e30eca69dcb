"""Issue #21 items 5 and 10 in real Chromium: the viewer's 2D map and 3D scene (MapLibre with its
blob workers, CesiumJS with its workers and WebAssembly) run under the server's
Content-Security-Policy with zero violations, and ``/docs`` and ``/redoc`` list the operations
with every request outside this server blocked (an intranet without internet)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("tests.viewer_support")

from tests.viewer_support import wait_for_map  # noqa: E402

pytest_plugins = ("tests.viewer_support",)

# every violation the page and its workers report: the DOM event (page) and Chromium's
# console message (page and workers)
RECORD = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(
  `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


def _watch(page: Any, base: str) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {"console": [], "outside": [], "failed": []}
    page.add_init_script(RECORD)
    page.on("console", lambda m: seen["console"].append(m.text)
            if "Content Security Policy" in m.text or "Content-Security-Policy" in m.text
            else None)

    def route(r: Any) -> None:
        if r.request.url.startswith(base) or r.request.url.startswith(("data:", "blob:")):
            r.continue_()
        else:   # the network beyond this server is "down"
            seen["outside"].append(r.request.url)
            r.abort()

    page.context.route("**/*", route)
    page.on("requestfailed", lambda r: seen["failed"].append(f"{r.url} {r.failure}"))
    return seen


def _violations(page: Any, seen: dict[str, list[str]]) -> list[str]:
    return list(page.evaluate("() => window.__csp || []")) + seen["console"]


def test_2d_map_runs_under_the_csp(page: Any, live_server) -> None:
    seen = _watch(page, live_server.base)
    response = page.goto(live_server.base + "/")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    wait_for_map(page, 60_000)
    # a search and an info panel: the viewer's own fetches and DOM updates
    page.evaluate("() => window.cadastreViewer.map.zoomTo(17)")
    page.wait_for_timeout(1500)
    assert _violations(page, seen) == []
    assert seen["outside"] == [] and not page.console_errors, page.console_errors


def test_3d_scene_runs_under_the_csp(page: Any, live_server, viewer_dist: Path) -> None:
    seen = _watch(page, live_server.base)
    build = json.loads((viewer_dist / "build.json").read_text())
    sets = {d["name"]: d for d in page.request.get(
        live_server.base + "/api/v1/3d/datasets").json()["datasets"]}
    west, south, east, north = sets["demo-units"]["extent"][:4]
    lon, lat = (west + east) / 2, (south + north) / 2
    page.goto(f"{live_server.base}/{build['app']}/3d.html#{lon:.6f},{lat:.6f},350,20,-40")
    page.wait_for_function("() => window.scene3d && window.scene3d.ready", timeout=60_000)
    page.evaluate("() => window.scene3d.ready.then(() => true)")
    page.wait_for_function(
        """() => { const s = window.scene3d; const t = s && s.tilesets;
                   return !!t && Object.values(t).every((x) => x.tilesLoaded); }""",
        timeout=120_000, polling=250)
    page.wait_for_timeout(1000)
    assert page.evaluate("() => window.scene3d.errors") == []
    assert _violations(page, seen) == []
    assert seen["outside"] == [], seen["outside"]


@pytest.mark.parametrize("path, selector", [
    ("/docs", ".opblock"),
    ("/redoc", "[data-section-id^='operation/'], [id^='operation/']"),
])
def test_api_docs_load_offline(page: Any, live_server, path: str, selector: str) -> None:
    seen = _watch(page, live_server.base)
    spec = page.request.get(live_server.base + "/openapi.json").json()
    operations = sum(len(ops) for ops in spec["paths"].values())
    page.goto(live_server.base + path)
    page.wait_for_function(f"() => document.querySelectorAll({selector!r}).length >= 40",
                           timeout=60_000)
    shown = page.evaluate(f"() => document.querySelectorAll({selector!r}).length")
    assert shown >= min(operations, 40) and operations >= 60
    assert "/api/v1/search" in page.content()
    assert seen["outside"] == [], seen["outside"]          # nothing fetched from a CDN
    assert _violations(page, seen) == []
