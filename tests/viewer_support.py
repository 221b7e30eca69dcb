"""Shared fixtures for the browser tests of the web viewer (``tests/test_viewer.py`` for 2D and
the owner/registrar/surveyor flows, ``tests/test_viewer_3d.py`` for the CesiumJS scene).

Real parts only: the viewer is built by ``scripts/build_viewer.sh`` into ``viewer/dist``, served
by a real uvicorn process (``api.app:create_app``) on a free loopback port, and driven by
Playwright with Debian's ``/usr/bin/chromium`` (software WebGL through SwiftShader).

Use from a test module (as a plugin, so the fixtures need no imports)::

    pytest_plugins = ("tests.viewer_support",)
    from tests.viewer_support import screenshot, wait_for_map

Fixtures
  ``viewer_dist``    session: ``viewer/dist`` built (the build script skips work when up to date)
  ``viewer_assets``  session: a folder with the demo orthophoto (``rasters/``, ``demo-ortho``) and
                     the demo 3D datasets (``3dtiles/``: ``demo-photogrammetry`` and
                     ``demo-units``), built once per demo database and reused across sessions
  ``live_server``    session: a :class:`LiveServer` on the shared demo database (READ-ONLY use)
  ``browser``        session: Playwright Chromium
  ``page``           function: a fresh context (1280×800, zh-CN) whose console errors are kept in
                     ``page.console_errors``; a screenshot ``<test>-end.png`` is saved at teardown
For a test that changes data, start your own server on your own database::

    with LiveServer(url, data_dir_for(tmp_path, test_settings, viewer_assets)) as server:
        page.goto(server.base + "/")

What the viewer exposes to tests (see viewer/README.md):
  ``window.cadastreViewer``: ``map`` (the maplibregl.Map), ``ready`` (a Promise resolved when the
  first view has rendered), ``firstViewMs`` (navigation start → first tiles rendered),
  ``scene3d`` (the handle ``open3D`` returned while the 3D scene is open, else null),
  ``select(kind, ref)``, ``setLang("zh"|"en")``.
  Elements: ``#search-input``, ``#search-list``, ``#info-panel``, ``#toggle-3d`` (2D ↔ 3D),
  ``#scene3d`` (the container handed to ``open3D``), ``#floor-select``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from cadastre.settings import PROJECT_ROOT, Settings

VIEWER_DIST = PROJECT_ROOT / "viewer" / "dist"
BUILD_SCRIPT = PROJECT_ROOT / "scripts" / "build_viewer.sh"
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--enable-unsafe-swiftshader", "--use-angle=swiftshader",
                 "--ignore-gpu-blocklist"]
VIEWPORT = {"width": 1280, "height": 800}


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock shared by concurrent pytest processes (2D and 3D tests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_viewer() -> Path:
    """Run ``scripts/build_viewer.sh`` (it returns at once when ``viewer/dist`` is current)."""
    with _file_lock(PROJECT_ROOT / "var" / "locks" / "viewer-build.lock"):
        proc = subprocess.run(["bash", str(BUILD_SCRIPT)], cwd=PROJECT_ROOT,
                              capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"build_viewer.sh failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    assert (VIEWER_DIST / "index.html").is_file(), proc.stdout
    return VIEWER_DIST


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``uvicorn api.app:create_app`` in a subprocess on ``database_url`` and ``data_dir``."""

    def __init__(self, database_url: str, data_dir: Path, port: int | None = None) -> None:
        self.database_url = database_url
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = self.data_dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> LiveServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CADASTRE_")}
        env.update({"DATABASE_URL": self.database_url, "CADASTRE_DATA_DIR": str(self.data_dir),
                    "CADASTRE_PORT": str(self.port), "PYTHONUNBUFFERED": "1"})
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
             "--no-proxy-headers", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning"],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited ({self.proc.returncode}):\n{self.log()}")
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"server did not answer /health in {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def data_dir_for(target: Path, test_settings: Settings, assets: Path | None = None) -> Path:
    """A server data dir: the test keys (tokens and PII decrypt as in the other tests) and, when
    given, the shared orthophoto/3D assets linked in (read-only use)."""
    from tests.conftest import app_data_dir

    app_data_dir(test_settings, target)
    if assets is not None:
        (target / "cache").mkdir(exist_ok=True)
        for sub in ("rasters", "3dtiles", "cache/glyphs", "cache/sprites", "cache/raster"):
            link = target / sub
            (assets / sub).mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(assets / sub, target_is_directory=True)
    return target


def build_assets(database_url: str, folder: Path, *, three_d: bool = True) -> Path:
    """The demo orthophoto, the map glyphs its labels need and (if ``osgconv`` exists) the demo
    3D datasets of the database at ``database_url``, under ``folder`` (a data dir layout:
    ``rasters/``, ``3dtiles/``, ``cache/glyphs``)."""
    from tiles.demo.ortho import publish_demo_orthophoto
    from tiles.glyphs import glyph_store, prebuild_label_ranges
    from tiles.raster import get_raster, list_rasters, prewarm_tiles
    from tiles.style import FONT_REGULAR

    folder.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(database_url) as conn:
        # glyphs are rendered on first request (seconds per CJK range): render the label text's
        # ranges once here, so a browser test measures the map, not a cold font cache
        prebuild_label_ranges(conn, glyph_store(folder / "cache" / "glyphs"),
                              ",".join(FONT_REGULAR))
        if not any(r.name == "demo-ortho" for r in list_rasters(folder)):
            publish_demo_orthophoto(conn, folder)
        # as the demo command does: its tiles rendered into the disk cache ahead of a first view
        prewarm_tiles(folder, get_raster(folder, "demo-ortho"))
        if three_d and shutil.which("osgconv"):
            from tiles.demo.scene import write_demo_production
            from tiles.threed.build import build_dataset
            from tiles.threed.compress import Compression
            from tiles.threed.registry import list_datasets
            from tiles.threed.unit_tiles import publish_unit_volumes

            # both demo datasets Draco-compressed: the browser tests load and pick those
            draco = {d.name for d in list_datasets(folder)
                     if (d.extra.get("compression") or {}).get("geometry") == "draco"}
            if not {"demo-photogrammetry", "demo-units"} <= draco:
                source = folder / "3d-sources" / "demo-production"
                _, codes = write_demo_production(conn, source, tiles=1)
                publish_unit_volumes(conn, folder, "demo-units", buildings=codes, force=True,
                                     compression=Compression("draco"))
                build_dataset(folder, source, "demo-photogrammetry", replace=True,
                              compression=Compression("draco", texture_quality=85))
    return folder


# ----------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def viewer_dist() -> Path:
    return build_viewer()


@pytest.fixture(scope="session")
def viewer_assets(demo_url: str) -> Path:
    """Built once per demo database (its name hashes the generator), kept across sessions."""
    from tests.conftest import DEMO_DB, TEST_DATA_DIR

    folder = TEST_DATA_DIR / "viewer-assets" / DEMO_DB
    with _file_lock(TEST_DATA_DIR / "viewer-assets" / ".lock"):
        for old in (TEST_DATA_DIR / "viewer-assets").iterdir():
            if old.is_dir() and old.name != DEMO_DB:   # built from an older demo database
                shutil.rmtree(old, ignore_errors=True)
        build_assets(demo_url, folder)
    return folder


@pytest.fixture(scope="session")
def live_server(demo_url: str, test_settings: Settings, viewer_dist: Path, viewer_assets: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The server on the shared demo database. Read-only use: never change registry rows."""
    data_dir = data_dir_for(tmp_path_factory.mktemp("viewer_app"), test_settings, viewer_assets)
    with LiveServer(demo_url, data_dir) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian chromium is needed (scripts/setup.sh installs it)"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture()
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", accept_downloads=True)
    pg = context.new_page()
    pg.console_errors = []
    pg.on("console", lambda m: pg.console_errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.console_errors.append(f"pageerror: {e}"))
    try:
        yield pg
    finally:
        try:
            screenshot(pg, f"{request.node.name}-end")
        except Exception:  # a closed page has nothing to show
            pass
        context.close()


# ------------------------------------------------------------------------------------ helpers
def screenshot(page: Any, name: str) -> Path:
    """Save a PNG under ``test-artifacts/`` and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    path = ARTIFACTS / f"{safe}.png"
    page.screenshot(path=str(path))
    return path


def wait_for_map(page: Any, timeout_ms: int = 30_000) -> None:
    """Wait until the 2D map has rendered its first view and has no tiles in flight."""
    page.wait_for_function(
        "() => window.cadastreViewer && window.cadastreViewer.firstViewMs != null",
        timeout=timeout_ms)
    wait_for_idle(page, timeout_ms)


def wait_for_idle(page: Any, timeout_ms: int = 30_000) -> None:
    page.wait_for_function(
        """() => { const m = window.cadastreViewer && window.cadastreViewer.map;
                   return !!m && m.loaded() && m.areTilesLoaded() && !m.isMoving(); }""",
        timeout=timeout_ms)
