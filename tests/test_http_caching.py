"""The one HTTP caching helper (``api/httpcache.py``): If-None-Match with weak tags, lists and
``*`` (RFC 9110 §13.1.2), Accept-Encoding q-values, distinct tags for gzip and identity bodies,
Vary; and each route family's 304s through the real app: vector tiles (router and warm fast
path, anonymous and with a token), raster tiles, 3D Tiles, glyphs, sprites, styles and the
viewer's files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import httpcache as hc
from cadastre.settings import Settings

pytest_plugins = ("tests.viewer_support",)

TAG = '"abc123"'


# ------------------------------------------------------------------ the helper itself
@pytest.mark.parametrize("header, matches", [
    (None, False), ("", False),
    ('"abc123"', True), ('W/"abc123"', True),              # weak comparison
    ('"other", "abc123"', True), ('"other",W/"abc123"', True),
    ('"x,y", "abc123"', True),                             # a comma inside a tag
    ('"other"', False), ('"abc12"', False), ('abc123', False),
    ("*", True), ('"other", *', True),
])
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert hc.none_match(header, TAG) is matches
    assert hc.none_match(header, "W/" + TAG) is matches    # our tag weak: still weak comparison


@pytest.mark.parametrize("header, gzip", [
    (None, False), ("", False), ("identity", False), ("gzip", True), ("GZIP", True),
    ("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8", True), ("gzip;q=0", False),
    ("gzip;q=0.000", False), ("*", True), ("*;q=0", False), ("*, gzip;q=0", False),
    ("x-gzip", True), ("deflate", False), ("gzip;q=abc", False),
])
def test_accept_encoding(header: str | None, gzip: bool) -> None:
    assert hc.accepts_gzip(header) is gzip


def test_choose_gives_each_encoding_its_own_tag() -> None:
    policy = hc.Policy("public, max-age=60", hc.CALLER_VARY)
    plain = hc.choose({}, TAG, policy, gzip_available=True)
    packed = hc.choose({"accept-encoding": "gzip"}, TAG, policy, gzip_available=True)
    assert (plain.status, plain.gzip, plain.headers["ETag"]) == (200, False, TAG)
    assert (packed.status, packed.gzip) == (200, True)
    assert packed.headers["ETag"] == '"abc123-gz"' and packed.headers["Content-Encoding"] == "gzip"
    assert packed.headers["Vary"] == "Authorization, X-API-Key, Accept-Encoding"
    # the identity tag does not validate the gzip body, nor the other way round
    assert hc.choose({"accept-encoding": "gzip", "if-none-match": TAG}, TAG, policy,
                     gzip_available=True).status == 200
    assert hc.choose({"if-none-match": '"abc123-gz"'}, TAG, policy,
                     gzip_available=True).status == 200
    again = hc.choose({"accept-encoding": "gzip", "if-none-match": 'W/"abc123-gz"'}, TAG, policy,
                      gzip_available=True)
    assert again.status == 304 and again.headers["ETag"] == '"abc123-gz"'
    assert "Content-Encoding" not in again.headers
    # no gzip body: identity whatever the client accepts
    only = hc.choose({"accept-encoding": "gzip"}, TAG, policy, gzip_available=False)
    assert only.headers["ETag"] == TAG and not only.gzip
    # empty resources: 204, or 304 when known
    assert hc.choose({}, TAG, policy, gzip_available=True, empty=True).status == 204
    assert hc.choose({"if-none-match": "*"}, TAG, policy, gzip_available=True,
                     empty=True).status == 304


def test_strong_etag_is_stable_and_distinct() -> None:
    assert hc.strong_etag(b"a", "b") == hc.strong_etag(b"a", "b")
    assert hc.strong_etag(b"ab") != hc.strong_etag(b"a", b"b")
    assert hc.strong_etag(b"x").startswith('"') and hc.variant(hc.strong_etag(b"x"), True) \
        .endswith('-gz"')


# ------------------------------------------------------------------ every route family
@pytest.fixture(scope="module")
def app_client(demo_url: str, test_settings: Settings, viewer_dist: Path, viewer_assets: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from api.app import create_app
    from tests.viewer_support import data_dir_for

    data_dir = data_dir_for(tmp_path_factory.mktemp("caching_app"), test_settings,
                            viewer_assets)
    app = create_app(Settings(storage={"data_dir": data_dir}, database={"url": demo_url}))
    with TestClient(app) as client:
        yield client


def _vary(r) -> set[str]:  # type: ignore[no-untyped-def]
    """The names in Vary (CORS adds ``Origin`` after ours)."""
    return {v.strip() for v in r.headers["vary"].split(",")}


def _revalidates(c: TestClient, url: str, headers: dict[str, str] | None = None,
                 vary: str = "Accept-Encoding") -> None:
    """200 with a validator; 304 for the same tag, weak, in a list and ``*``; 200 for another
    tag; a distinct tag for the other encoding when the body is sent compressed."""
    base = dict(headers or {})
    for encoding in ("gzip", "identity"):
        h = {**base, "Accept-Encoding": encoding}
        first = c.get(url, headers=h)
        assert first.status_code in (200, 204), (url, first.status_code, first.text[:200])
        tag = first.headers["etag"]
        assert _vary(first) >= set(vary.split(", ")) and first.headers["cache-control"]
        gz = first.headers.get("content-encoding") == "gzip"
        assert tag.endswith('-gz"') is gz, (url, encoding, tag)
        for inm in (tag, "W/" + tag, f'"nope", {tag}', "*"):
            r = c.get(url, headers={**h, "If-None-Match": inm})
            assert r.status_code == 304 and not r.content, (url, inm, r.status_code)
            assert r.headers["etag"] == tag and _vary(r) == _vary(first)
            assert r.headers["cache-control"] == first.headers["cache-control"]
        assert c.get(url, headers={**h, "If-None-Match": '"nope"'}).status_code == \
            first.status_code
        head = c.head(url, headers={**h, "If-None-Match": tag})
        assert head.status_code == 304


def test_vector_tiles_fast_path_and_router(app_client: TestClient, registrar_token: str) -> None:
    url = "/tiles/parcels,buildings/16/54613/26700.mvt"
    vary = "Authorization, X-API-Key, Accept-Encoding"
    _revalidates(app_client, url, vary=vary)        # first call renders, then the fast path
    r = app_client.get(url)
    assert r.headers["access-control-expose-headers"] == "ETag"
    assert r.headers["cache-control"] == "public, max-age=300"
    token = {"Authorization": f"Bearer {registrar_token}"}
    _revalidates(app_client, url, token, vary=vary)   # the router (credentials skip the fast path)
    assert app_client.get(url, headers=token).headers["cache-control"] == "private, max-age=60"
    # an empty tile: 204, then 304
    _revalidates(app_client, "/tiles/parcels/16/0/0.mvt", vary=vary)


def test_raster_tiles(app_client: TestClient) -> None:
    tj = app_client.get("/raster/demo-ortho/tilejson.json").json()
    z = tj["maxzoom"] - 1
    import mercantile

    lon, lat = tj["center"][:2]
    t = mercantile.tile(lon, lat, z)
    url = f"/raster/demo-ortho/{t.z}/{t.x}/{t.y}.png"
    _revalidates(app_client, url)
    r = app_client.get(url, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in r.headers and r.content[:4] == b"\x89PNG"


def test_3d_tiles(app_client: TestClient) -> None:
    _revalidates(app_client, "/3dtiles/demo-units/tileset.json")
    tileset = app_client.get("/3dtiles/demo-units/tileset.json").json()
    uri = _first_content(tileset["root"])
    _revalidates(app_client, f"/3dtiles/demo-units/{uri}")
    r = app_client.get(f"/3dtiles/demo-units/{uri}", headers={"Accept-Encoding": "gzip"})
    # a binary body is not gzipped by the middleware under the identity tag
    assert "content-encoding" not in r.headers and not r.headers["etag"].endswith('-gz"')


def _first_content(node: dict) -> str:
    if "content" in node:
        return str(node["content"]["uri"])
    for child in node.get("children", ()):
        return _first_content(child)
    raise AssertionError("no content in the tileset")


def test_map_assets(app_client: TestClient) -> None:
    _revalidates(app_client, "/glyphs/Noto Sans CJK SC Regular/20224-20479.pbf")
    _revalidates(app_client, "/sprites/cadastre.png")
    _revalidates(app_client, "/sprites/cadastre@2x.json")
    _revalidates(app_client, "/styles/cadastre.json")


def test_viewer_files(app_client: TestClient, viewer_dist: Path) -> None:
    build = json.loads((viewer_dist / "build.json").read_text())
    _revalidates(app_client, "/")
    _revalidates(app_client, "/build.json")
    _revalidates(app_client, f'/{build["app"]}/main.js')
    _revalidates(app_client, f'/{build["maplibre"]["path"]}/maplibre-gl.js')
