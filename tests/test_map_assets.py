"""Map assets served locally: glyph PBFs decoded, sprites checked against their PNG, styles
validated with MapLibre's own validator, and no URL outside the server."""

from __future__ import annotations

import io
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from api import errors
from api.routers import assets
from cadastre.settings import Settings
from tests.support import NPM_TOOLS, npm_package
from tiles import glyphs
from tiles.glyphs import BUFFER, GlyphStore, decode_range
from tiles.style import STYLE_NAMES, build_style

REGULAR = "Noto Sans CJK SC Regular"
BOLD = "Noto Sans CJK SC Bold"
BASE = "http://testserver"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("assets")


@pytest.fixture(scope="module")
def client(data_dir: Path) -> Iterator[TestClient]:
    app = FastAPI()
    errors.install(app)
    app.include_router(assets.router)
    app.state.settings = Settings(storage={"data_dir": data_dir})
    with TestClient(app) as c:
        yield c


def _range_of(char: str) -> str:
    start = ord(char) // 256 * 256
    return f"{start}-{start + 255}"


def _glyphs(client: TestClient, stack: str, char_or_range: str) -> dict[int, Any]:
    rng = _range_of(char_or_range) if len(char_or_range) == 1 else char_or_range
    r = client.get(f"/glyphs/{stack}/{rng}.pbf")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-protobuf"
    message = decode_range(r.content)
    assert len(message.stacks) == 1
    assert message.stacks[0].name == stack
    assert message.stacks[0].range == rng
    return {g.id: g for g in message.stacks[0].glyphs}


def _assert_sane(glyph: Any) -> None:
    assert glyph.advance > 0
    assert 0 < glyph.width <= 30 and 0 < glyph.height <= 30
    assert len(glyph.bitmap) == (glyph.width + 2 * BUFFER) * (glyph.height + 2 * BUFFER)
    # the distance field has inside pixels (≥ 192, the edge) and its buffer ring is outside
    w, h = glyph.width + 2 * BUFFER, glyph.height + 2 * BUFFER
    rows = [glyph.bitmap[i * w : (i + 1) * w] for i in range(h)]
    ring = [*rows[0], *rows[-1], *(r[0] for r in rows), *(r[-1] for r in rows)]
    assert max(glyph.bitmap) >= 192 and max(ring) < 192


@pytest.mark.parametrize("stack", [REGULAR, BOLD])
def test_latin_range(client: TestClient, stack: str) -> None:
    found = _glyphs(client, stack, "0-255")
    space = found[ord(" ")]
    assert not space.bitmap and space.width == 0 and space.height == 0 and space.advance > 0
    for char in "Abc123":
        _assert_sane(found[ord(char)])
    capital, small = found[ord("A")], found[ord("c")]
    assert capital.height > small.height  # x-height below cap height
    assert capital.top > found[ord("g")].top - 10  # tops share the ascender origin


def test_cjk_ranges(client: TestClient) -> None:
    assert ord("一") == 0x4E00 == 19968 and ord("国") == 0x56FD == 22269
    first = _glyphs(client, REGULAR, "19968-20223")
    assert len(first) == 256  # the whole block is in Noto Sans CJK SC
    one = first[0x4E00]
    _assert_sane(one)
    assert one.height < one.width / 3  # 一 is a flat horizontal stroke
    country = _glyphs(client, REGULAR, "国")  # 22016-22271
    _assert_sane(country[0x56FD])
    assert country[0x56FD].advance == 24  # full-width at 24 px
    bold = _glyphs(client, BOLD, "国")[0x56FD]
    assert sum(bold.bitmap) > sum(country[0x56FD].bitmap)  # heavier strokes


def test_cache_and_comma_stack(client: TestClient, data_dir: Path) -> None:
    r1 = client.get(f"/glyphs/{REGULAR}/0-255.pbf")
    cached = list((data_dir / "cache" / "glyphs").glob(f"v*/{REGULAR}/0-255.pbf"))
    assert len(cached) == 1 and cached[0].read_bytes() == r1.content
    # a stack list uses its first known font
    r2 = client.get(f"/glyphs/Unknown Font,{REGULAR}/0-255.pbf")
    assert r2.status_code == 200 and r2.content == r1.content
    etag = r1.headers["etag"]
    assert r1.headers["cache-control"] == "public, max-age=86400"
    assert client.get(f"/glyphs/{REGULAR}/0-255.pbf", headers={"If-None-Match": etag}
                      ).status_code == 304


def test_empty_range_is_valid(client: TestClient) -> None:
    # U+E000 private use: no glyphs in the font, still a valid PBF
    r = client.get(f"/glyphs/{REGULAR}/57344-57599.pbf")
    assert r.status_code == 200
    message = decode_range(r.content)
    assert message.stacks[0].range == "57344-57599" and len(message.stacks[0].glyphs) == 0


def test_unknown_fontstack_and_bad_ranges(client: TestClient) -> None:
    r = client.get("/glyphs/Comic Sans MS/0-255.pbf")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "FONTSTACK_NOT_FOUND"
    for bad in ("0-256", "1-256", "abc", "256-255", "-1-254", "0-0"):
        r = client.get(f"/glyphs/{REGULAR}/{bad}.pbf")
        assert r.status_code == 400, bad
        assert r.json()["error"]["code"] == "INVALID_GLYPH_RANGE"


def test_concurrent_requests_share_one_file(tmp_path: Path) -> None:
    store = GlyphStore(tmp_path)
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(store.get(BOLD, "256-511")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len(set(results)) == 1
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["256-511.pbf"]  # no temporary file left behind
    seen: list[tuple[int, int]] = []
    assert store.prebuild([BOLD], [256, 512], lambda d, t: seen.append((d, t))) == 1
    assert seen == [(1, 2), (2, 2)]


@pytest.mark.parametrize("suffix,ratio", [("", 1), ("@2x", 2)])
def test_sprites(client: TestClient, suffix: str, ratio: int) -> None:
    index = client.get(f"/sprites/cadastre{suffix}.json")
    png = client.get(f"/sprites/cadastre{suffix}.png")
    assert index.status_code == 200 and png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content))
    image.load()
    assert image.mode == "RGBA"
    entries = index.json()
    expected = {"boundary-point", "school", "park", "commercial", "residential", "building",
                "unit-pin", "search-marker"}
    assert expected <= set(entries)
    for name, e in entries.items():
        assert e["pixelRatio"] == ratio
        assert e["x"] >= 0 and e["y"] >= 0 and e["width"] > 0 and e["height"] > 0
        assert e["x"] + e["width"] <= image.width and e["y"] + e["height"] <= image.height
        icon = image.crop((e["x"], e["y"], e["x"] + e["width"], e["y"] + e["height"]))
        assert icon.getchannel("A").getextrema()[1] == 255, f"{name} is empty"
    # deterministic: the same bytes again, and the same ETag
    assert client.get(f"/sprites/cadastre{suffix}.png").headers["etag"] == png.headers["etag"]


def test_unknown_sprite_and_style(client: TestClient) -> None:
    assert client.get("/sprites/nope.json").status_code == 404
    assert client.get("/sprites/cadastre@3x.png").status_code == 404
    r = client.get("/styles/nope.json")
    assert r.status_code == 404 and r.json()["error"]["code"] == "STYLE_NOT_FOUND"


def _urls(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _urls(v)
    elif isinstance(value, list):
        for v in value:
            yield from _urls(v)
    elif isinstance(value, str) and ("://" in value or value.startswith("//")):
        yield value


@pytest.mark.parametrize("name", STYLE_NAMES)
def test_style_is_local(client: TestClient, name: str) -> None:
    r = client.get(f"/styles/{name}.json")
    assert r.status_code == 200
    body = r.json()
    assert body["version"] == 8
    urls = list(_urls(body))
    assert len(urls) >= 5
    assert all(u.startswith(BASE + "/") for u in urls), urls
    assert body["glyphs"] == f"{BASE}/glyphs/{{fontstack}}/{{range}}.pbf"
    assert body["sprite"] == f"{BASE}/sprites/cadastre"
    ids = {layer["id"] for layer in body["layers"]}
    assert {"ortho", "parcel-fill", "parcel-line", "building-fill", "unit-fill",
            "boundary-point", "boundary-point-label", "label-compound"} <= ids
    assert ("building-extrusion" in ids) == (name == "cadastre-3d")
    fonts = {f for layer in body["layers"] for f in layer.get("layout", {}).get("text-font", [])}
    assert fonts and fonts <= set(glyphs.FONT_STACKS)
    # every font and icon the style uses is served
    for font in fonts:
        assert client.get(f"/glyphs/{font}/0-255.pbf").status_code == 200
    sprite = client.get("/sprites/cadastre.json").json()
    icons = {layer["layout"]["icon-image"] for layer in body["layers"]
             if isinstance(layer.get("layout", {}).get("icon-image"), str)}
    assert icons and icons <= set(sprite)
    assert build_style(name, "http://h:1/x/")["sprite"] == "http://h:1/x/sprites/cadastre"


def _style_validator() -> list[str]:
    npm_package(NPM_TOOLS, "@maplibre/maplibre-gl-style-spec")
    return ["node", str(NPM_TOOLS / "node_modules" / ".bin" / "gl-style-validate")]


@pytest.mark.parametrize("name", STYLE_NAMES)
def test_style_validates_with_maplibre(name: str, tmp_path: Path) -> None:
    validate = _style_validator()
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(build_style(name, BASE), ensure_ascii=False), encoding="utf-8")
    r = subprocess.run([*validate, str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    # the validator does catch errors (guards against it silently accepting anything)
    broken = build_style(name, BASE)
    broken["layers"][0]["type"] = "no-such-type"
    path.write_text(json.dumps(broken), encoding="utf-8")
    r = subprocess.run([*validate, str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "no-such-type" in r.stdout + r.stderr


def test_glyphs_are_served_precompressed(client: TestClient) -> None:
    """A CJK range is compressed once and sent with Content-Encoding: gzip under its own ETag;
    the same bytes after decoding as the identity response."""
    url = f"/glyphs/{REGULAR}/20224-20479.pbf"
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    packed = client.get(url, headers={"Accept-Encoding": "gzip"})   # httpx decodes the body
    assert plain.status_code == packed.status_code == 200
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "Accept-Encoding"
    # one resource, two bodies: two entity tags (RFC 9110 §8.8.3), the gzip one marked
    assert packed.headers["etag"] == plain.headers["etag"][:-1] + "-gz\""
    assert packed.content == plain.content
    assert packed.num_bytes_downloaded < 0.6 * plain.num_bytes_downloaded
