"""The acceptance crawl: nothing that identifies a right holder leaves a public endpoint.

Every party of the demo district is decrypted (names of persons and organisations, ID numbers
and credit codes, phones, addresses) and every certificate number is collected. Then the app is
crawled anonymously, as anyone on the internet could: every GET operation of its OpenAPI spec
and the routes outside it (viewer files, map assets), every vector tile of the district at
z14–z18 (all non-floor layers; the floor layer at every floor), OGC API collections with all
items pages, 3D unit volumes, search with many queries, what-is-here at every building, details
of every parcel and building, a sample of units, the 楼盘表 of every building, the public
certificate verification page, and error responses to PII-laden input. Each response is scanned
— JSON strings and numbers, HTML and text, decoded MVT properties and the raw bytes, PDF text —
with an Aho-Corasick automaton over all needles. Owners' PDFs (宗地图, 分层分户图) are checked
too: they may show the owner's own data, never anyone else's.

The numbers (requests, bytes, per section) go to ``test-artifacts/pii_crawl.json``.
"""

from __future__ import annotations

import gzip
import html
import json
import random
import re
import threading
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import ahocorasick
import mapbox_vector_tile
import mercantile
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from cadastre.access.pii import load_cipher
from cadastre.access.privacy import mask_certificate, mask_id_number, mask_name, mask_phone
from cadastre.query.layers import LAYERS
from cadastre.settings import PROJECT_ROOT, Settings
from tests.conftest import app_data_dir

ARTIFACT = PROJECT_ROOT / "test-artifacts" / "pii_crawl.json"
WORKERS = 4
UNIT_SAMPLE = 1500          # unit details fetched (of ~31,600): every k-th unit
OGC_ITEM_SAMPLE = 100       # single items per collection
CERT_SAMPLE = 300           # certificate verification pages (current) + a third superseded
SEARCH_PII_SAMPLE = 60      # needles of each kind used as search queries
CASE_SAMPLE = 200           # registration cases whose public progress (一号查询) is fetched
_DIGITS = re.compile(r"\d")
_OWN_LINKS = re.compile(rb"https?://testserver/[^\s\"'<>]*")
# GET operations with nothing to serve in the crawled setup (no orthophoto is published there)
NO_DATA = {"/raster/{name}/{z}/{x}/{y}.{fmt}", "/raster/{name}/tilejson.json"}


# ------------------------------------------------------------------ needles
def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def load_needles(url: str, settings: Settings) -> dict[str, dict[str, str]]:
    """kind → {needle: masked form for reports}."""
    cipher = load_cipher(settings)
    out: dict[str, dict[str, str]] = {k: {} for k in
                                      ("name", "id_number", "phone", "address", "certificate")}
    with psycopg.connect(url) as conn:
        for name, idn, phone, addr in conn.execute(
                "SELECT name_enc, id_number_enc, phone_enc, address_enc FROM pii.party"):
            n = _norm(cipher.decrypt(name) or "")
            i = _norm(cipher.decrypt(idn) or "")
            p = _norm(cipher.decrypt(phone) or "")
            a = _norm(cipher.decrypt(addr) or "")
            if len(n) >= 2:
                out["name"][n] = mask_name(n) or ""
            if i:
                out["id_number"][i] = mask_id_number(i) or ""
                out["id_number"][i.lower()] = mask_id_number(i) or ""
            if p:
                out["phone"][p] = mask_phone(p) or ""
            if a:
                out["address"][a] = a[:6] + "…"
        for (cert,) in conn.execute("SELECT DISTINCT certificate_no FROM cad.right_record "
                                    "WHERE certificate_no IS NOT NULL"):
            c = _norm(cert)
            out["certificate"][c] = mask_certificate(c) or ""
    return out


class Scanner:
    """Counts what was crawled and finds needles in it."""

    def __init__(self, needles: dict[str, dict[str, str]]) -> None:
        self.auto = ahocorasick.Automaton()
        for kind, values in needles.items():
            for value, masked in values.items():
                self.auto.add_word(value, (kind, value, masked))
        self.auto.make_automaton()
        self.lock = threading.Lock()
        self.requests = 0
        self.bytes = 0
        self.scanned_chars = 0
        self.sections: dict[str, Counter[str]] = {}
        self.statuses: Counter[int] = Counter()
        self.hits: list[dict[str, str]] = []
        self.mvt_features = 0
        self.templates: set[tuple[str, str]] = set()

    def find(self, text: str, where: str) -> None:
        if not text:
            return
        text = _norm(text)
        found = []
        for end, (kind, value, masked) in self.auto.iter(text):
            start = end - len(value) + 1
            if kind == "phone":   # a phone inside a longer number (a coordinate) is not one
                before = text[start - 1] if start > 0 else ""
                after = text[end + 1] if end + 1 < len(text) else ""
                if _DIGITS.match(before) or _DIGITS.match(after):
                    continue
            context = text[max(0, start - 60):start] + "<…>" + text[end + 1:end + 30]
            found.append({"kind": kind, "needle": masked, "where": where, "context": context,
                          "_value": value})
        with self.lock:
            self.scanned_chars += len(text)
            self.hits.extend(found)

    def response(self, r: Any, section: str) -> None:
        body = r.content
        where = f"{r.request.method} {urlsplit(str(r.request.url)).path} → {r.status_code}"
        with self.lock:
            self.requests += 1
            self.bytes += len(body)
            sec = self.sections.setdefault(section, Counter())
            sec["requests"] += 1
            sec["bytes"] += len(body)
            sec[f"status_{r.status_code}"] += 1
            self.statuses[r.status_code] += 1
        ctype = r.headers.get("content-type", "")
        if r.headers.get("content-encoding") == "gzip" and body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)   # (httpx normally undoes it already)
        if section == "errors" and r.status_code < 400:
            # a probe that was accepted: its self/next links repeat the probe's own URL (OGC
            # API requires them); what the caller typed is not data from the registry
            body = _OWN_LINKS.sub(b"", body)
        self.find(body.decode("utf-8", "replace"), where)   # the raw bytes, whatever they are
        if "json" in ctype:
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if data is not None:
                self.find("\n".join(_strings(data)), where + " (parsed)")
        elif "html" in ctype:
            self.find(html.unescape(body.decode("utf-8", "replace")), where + " (unescaped)")
        elif "vnd.mapbox-vector-tile" in ctype and body:
            tile = mapbox_vector_tile.decode(body)
            texts = []
            for layer_name, layer in tile.items():
                texts.append(layer_name)
                for feature in layer["features"]:
                    texts.extend(_strings(feature.get("properties", {})))
                    texts.extend(_strings(feature.get("id")))
                with self.lock:
                    self.mvt_features += len(layer["features"])
            self.find("\n".join(texts), where + " (MVT properties)")
        elif "pdf" in ctype:
            self.find(pdf_text(body), where + " (PDF text)")


def _strings(data: Any) -> Iterable[str]:
    """Every key and scalar of a JSON document, as text."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                yield str(k)
                stack.append(v)
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif item is not None:
            yield str(item)


def pdf_text(data: bytes) -> str:
    import io

    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


# ------------------------------------------------------------------ the crawler
class Crawler:
    def __init__(self, client: TestClient, scanner: Scanner) -> None:
        self.client, self.scanner = client, scanner
        self.pool = ThreadPoolExecutor(WORKERS)
        self.timings: dict[str, float] = {}

        self.seen: list[tuple[str, str, int]] = []   # method, path, status

    def get(self, url: str, section: str, **kw: Any) -> Any:
        r = self.client.get(url, **kw)
        assert r.status_code < 500, (url, r.status_code, r.text[:300])
        self.scanner.response(r, section)
        self.seen.append(("get", urlsplit(url).path, r.status_code))
        return r

    def post(self, url: str, section: str, **kw: Any) -> Any:
        r = self.client.post(url, **kw)
        assert r.status_code < 500, (url, r.status_code, r.text[:300])
        self.scanner.response(r, section)
        self.seen.append(("post", urlsplit(url).path, r.status_code))
        return r

    def many(self, urls: Iterable[str], section: str) -> list[Any]:
        started = time.monotonic()
        urls = list(urls)
        futures = [self.pool.submit(self.get, u, section) for u in urls]
        try:
            out = [f.result() for f in futures]
        except BaseException:
            for f in futures:   # stop the rest: the first failure is the report
                f.cancel()
            raise
        self.timings[section] = self.timings.get(section, 0.0) + time.monotonic() - started
        print(f"  {section}: {len(urls)} requests in {time.monotonic() - started:.1f} s")
        return out


@pytest.fixture(scope="module")
def crawl_env(demo_url: str, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    """The app on the demo district as the public reaches it. Its own client: rate limits off
    (the crawl is an enumeration on purpose), a fresh tile cache (every tile rendered), and the
    3D unit volumes of a slice of the district published into its data dir."""
    data_dir = app_data_dir(test_settings, tmp_path_factory.mktemp("crawl_app"))
    settings = Settings(storage={"data_dir": data_dir}, database={"url": demo_url},
                        api={"rate_limit_enabled": False})
    from tiles.threed.unit_tiles import publish_unit_volumes

    t = time.monotonic()
    with psycopg.connect(demo_url) as conn:
        tall = [r[0] for r in conn.execute(
            "SELECT building_code FROM cad.building WHERE valid_to IS NULL "
            "ORDER BY floors_above DESC NULLS LAST, building_code LIMIT 25")]
        publish_unit_volumes(conn, data_dir, "demo-units", buildings=tall)
    print(f"  3D unit volumes of {len(tall)} buildings in {time.monotonic() - t:.1f} s")
    started = time.time()
    # its own client address: the crawl's failed verifications must not lock the address the
    # other tests share (and they are removed again afterwards)
    # the public progress query needs a case's query code, which the demo keeps only hashed:
    # known codes for a sample of cases, put back afterwards
    from cadastre.cases.workflow import query_code_hash

    cipher = load_cipher(settings)
    with psycopg.connect(demo_url, autocommit=True) as conn:
        picked = conn.execute("SELECT case_no, query_code_hash FROM reg.case "
                              "ORDER BY md5(case_no) LIMIT %s", (CASE_SAMPLE,)).fetchall()
        codes = {no: f"CRAWL{i:03d}" for i, (no, _) in enumerate(picked)}
        for no, code in codes.items():
            conn.execute("UPDATE reg.case SET query_code_hash = %s WHERE case_no = %s",
                         (query_code_hash(cipher, no, code), no))
    with TestClient(create_app(settings), client=("203.0.113.7", 50000)) as client:
        try:
            yield {"client": client, "url": demo_url, "settings": settings, "codes": codes}
        finally:
            with psycopg.connect(demo_url, autocommit=True) as conn:
                conn.execute("DELETE FROM auth.failure WHERE at >= to_timestamp(%s)",
                             (started,))
                for no, old in picked:
                    conn.execute("UPDATE reg.case SET query_code_hash = %s WHERE case_no = %s",
                                 (old, no))


def test_no_party_data_in_any_public_response(crawl_env: dict, test_settings: Settings) -> None:
    t0 = time.monotonic()
    url, client = crawl_env["url"], crawl_env["client"]
    needles = load_needles(url, test_settings)
    scanner = Scanner(needles)
    crawler = Crawler(client, scanner)
    t_needles = time.monotonic() - t0
    print(f"  needles: {sum(len(v) for v in needles.values())} in {t_needles:.1f} s")
    rng = random.Random(20260630)
    with psycopg.connect(url) as conn:
        parcels = [r[0] for r in conn.execute(
            "SELECT parcel_code FROM cad.parcel WHERE valid_to IS NULL ORDER BY 1")]
        parcel_ids = [str(r[0]) for r in conn.execute(
            "SELECT feature_id FROM cad.parcel WHERE valid_to IS NULL ORDER BY parcel_code "
            "LIMIT 200")]
        buildings = conn.execute(
            "SELECT building_code, ST_X(c), ST_Y(c) FROM (SELECT building_code, "
            "ST_Transform(ST_PointOnSurface(geom_3857), 4326) c FROM cad.building "
            "WHERE valid_to IS NULL) s ORDER BY 1").fetchall()
        units = [r[0] for r in conn.execute(
            "SELECT unit_code FROM cad.unit WHERE valid_to IS NULL ORDER BY 1")]
        unit_ids = [str(r[0]) for r in conn.execute(
            "SELECT feature_id FROM cad.unit WHERE valid_to IS NULL ORDER BY unit_code "
            "LIMIT 100")]
        floor_boxes = conn.execute(
            """SELECT f, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
                 SELECT g.f, ST_Transform(b.geom_3857, 4326) e FROM cad.building b
                 JOIN LATERAL (SELECT DISTINCT generate_series(u.floor_no,
                                                               u.floor_no + u.floor_count - 1) f
                               FROM cad.unit u WHERE u.building_code = b.building_code
                                 AND u.valid_to IS NULL) g ON true
                 WHERE b.valid_to IS NULL) s""").fetchall()
        texts = [r[0] for r in conn.execute(
            "SELECT seat FROM cad.parcel WHERE valid_to IS NULL UNION "
            "SELECT compound_name FROM cad.parcel WHERE compound_name IS NOT NULL UNION "
            "SELECT name FROM cad.building WHERE name IS NOT NULL")]
        certs = conn.execute(
            "SELECT version_id, valid_to IS NULL FROM cad.right_record "
            "WHERE kind IN ('ownership', 'land_use') AND certificate_no IS NOT NULL "
            "ORDER BY version_id").fetchall()
        holders = conn.execute(
            """SELECT r.unit_code, r.certificate_no, p.name_enc, p.id_number_enc
               FROM cad.right_record r
               JOIN cad.right_party rp ON rp.right_version_id = r.version_id AND rp.role = 1
               JOIN pii.party p USING (party_id)
               WHERE r.kind = 'ownership' AND r.valid_to IS NULL AND r.status = 1
                 AND p.party_type = 1
               ORDER BY r.unit_code LIMIT 400""").fetchall()

    # 1. the API description and every documentation page
    spec = crawler.get("/openapi.json", "spec").json()
    for path in ("/docs", "/redoc", "/health", "/api/v1/rasters", "/api/v1/3d/datasets"):
        crawler.get(path, "spec")
    get_templates = sorted(p for p, ops in spec["paths"].items() if "get" in ops)

    # 2. the viewer's files (outside the spec)
    dist = PROJECT_ROOT / "viewer" / "dist"
    files = ["/", "/index.html"]
    if dist.is_dir():
        files += ["/" + p.relative_to(dist).as_posix() for p in sorted(dist.rglob("*"))
                  if p.is_file() and p.suffix != ".gz" and p.name != "index.html"]
    crawler.many(files, "viewer")

    # 3. map assets: styles, sprites, glyphs
    from tiles.sprites import SPRITE_NAMES
    from tiles.style import STYLE_NAMES

    assets = [f"/styles/{n}.json" for n in STYLE_NAMES]
    for n in SPRITE_NAMES:
        assets += [f"/sprites/{n}.json", f"/sprites/{n}.png", f"/sprites/{n}@2x.json",
                   f"/sprites/{n}@2x.png"]
    style = crawler.get(assets[0], "assets").json()
    stacks = {",".join(layer["layout"]["text-font"]) for layer in style["layers"]
              if "text-font" in layer.get("layout", {})}
    # glyph PBFs hold bitmaps, no text: Latin and the three CJK ranges used most by the labels
    used = Counter((ord(ch) // 256) * 256 for t in texts for ch in t)
    ranges = [0] + [r for r, _ in used.most_common() if r >= 0x3000][:3]
    assets += [f"/glyphs/{quote(st)}/{r}-{r + 255}.pbf" for st in sorted(stacks) for r in ranges]
    crawler.many(assets, "assets")

    # 4. vector tiles: every tile of the district at z14–z18, all layers; units at every floor
    names = [n for n, layer in LAYERS.items() if not layer.floor_filter]
    floor_layers = [n for n, layer in LAYERS.items() if layer.floor_filter]
    tilejson = crawler.get(f"/tiles/{','.join(names)}/tilejson.json", "tiles").json()
    for n in LAYERS:
        crawler.get(f"/tiles/{n}/tilejson.json?floor=1", "tiles")
    bounds = tilejson["bounds"]
    grid = list(mercantile.tiles(*bounds, list(range(14, 19))))
    crawler.many([f"/tiles/{','.join(names)}/{t.z}/{t.x}/{t.y}.mvt" for t in grid], "tiles")
    by_floor: dict[int, set[mercantile.Tile]] = {}
    for f, *box in floor_boxes:
        # every unit feature of every floor is in the z16 tiles; z17 for every 4th floor and
        # z18 for the ground floor (the same features, cut finer)
        zooms = [16] + ([17] if f % 4 == 1 else []) + ([18] if f == 1 else [])
        by_floor.setdefault(f, set()).update(mercantile.tiles(*box, zooms))
    floor_tiles = [f"/tiles/{n}/{t.z}/{t.x}/{t.y}.mvt?floor={f}" for n in floor_layers
                   for f, ts in sorted(by_floor.items()) for t in sorted(ts)]
    crawler.many(floor_tiles, "tiles_floors")

    # 5. OGC API: landing, conformance, collections, every items page, sample items, tiles
    ogc = ["/ogc", "/ogc/conformance", "/ogc/collections", "/ogc/tileMatrixSets"]
    crawler.many(ogc, "ogc")
    collections = [c["id"] for c in client.get("/ogc/collections").json()["collections"]]
    tms = [t["id"] for t in client.get("/ogc/tileMatrixSets").json()["tileMatrixSets"]]
    crawler.many([f"/ogc/tileMatrixSets/{t}" for t in tms], "ogc")
    item_pages = 0
    t_ogc = time.monotonic()
    for cid in collections:
        crawler.get(f"/ogc/collections/{cid}", "ogc")
        crawler.get(f"/ogc/collections/{cid}/tiles", "ogc")
        for t in tms:
            crawler.get(f"/ogc/collections/{cid}/tiles/{t}", "ogc")
        first = crawler.get(f"/ogc/collections/{cid}/items?limit=1000", "ogc_items").json()
        matched = first["numberMatched"]
        docs = [first] + [r.json() for r in crawler.many(
            [f"/ogc/collections/{cid}/items?limit=1000&offset={o}"
             for o in range(1000, matched, 1000)], "ogc_items")]
        item_pages += len(docs)
        ids = [str(f["id"]) for d in docs for f in d["features"]]
        assert len(ids) == matched, (cid, len(ids), matched)   # every feature, once
        assert not [ln for ln in docs[-1]["links"] if ln["rel"] == "next"]
        sample = rng.sample(ids, min(OGC_ITEM_SAMPLE, len(ids)))
        crawler.many([f"/ogc/collections/{cid}/items/{i}" for i in sample], "ogc_items")
        z16 = [t for t in grid if t.z == 16][:12]
        floor_q = "?floor=1" if cid in floor_layers else ""
        crawler.many([f"/ogc/collections/{cid}/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}{floor_q}"
                      for t in z16], "ogc_tiles")

    crawler.timings["ogc_all"] = time.monotonic() - t_ogc
    print(f"  ogc, all: {item_pages} item pages, {time.monotonic() - t_ogc:.1f} s")

    # 6. 3D: the datasets list, the unit volumes' tileset and every content file
    datasets = client.get("/api/v1/3d/datasets").json()
    three_d = ["/3dtiles/demo-units/tileset.json"]
    folder = crawl_env["settings"].data_dir / "3dtiles" / "demo-units"
    three_d += ["/3dtiles/demo-units/" + p.relative_to(folder).as_posix()
                for p in sorted(folder.rglob("*")) if p.is_file()
                and p.name not in ("tileset.json",) and not p.name.startswith(".")]
    crawler.many(three_d, "3d")
    assert "demo-units" in json.dumps(datasets)

    # 7. search: prefixes of every seat, names, codes, random CJK, and the needles themselves
    queries: set[str] = set()
    for t in texts:   # every distinct 2- and 3-character prefix of seats and names
        queries.update({t[:2], t[:3]})
    queries.update(rng.sample(sorted(texts), min(300, len(texts))))   # and whole ones
    queries.update(p[:k] for p in parcels[::50] for k in (6, 9, 12, 19))
    queries.update(u[:k] for u in units[::400] for k in (20, 24, 28))
    common = "王李张刘陈杨黄赵吴周文一路商务中心国际花园苑府城小区幢单元室号楼东西南北"
    queries.update("".join(rng.choice(common) for _ in range(rng.randint(2, 4)))
                   for _ in range(80))
    for kind in ("name", "id_number", "phone", "certificate", "address"):
        values = sorted(needles[kind])
        queries.update(rng.sample(values, min(SEARCH_PII_SAMPLE, len(values))))
    queries.update({"", "a", "1", "%", "_", "'", "330106", " " * 3})
    search_urls = [f"/api/v1/search?q={quote(q)}" for q in sorted(queries)]
    search_urls += [f"/api/v1/search?q={quote(q)}&kind={k}&limit=50" for q in
                    ("文一路", "商务中心", "330106") for k in ("unit", "building", "parcel",
                                                                 "compound")]
    results = crawler.many(search_urls, "search")
    cursors = [r.json().get("next") for r in results if r.status_code == 200]
    crawler.many([f"/api/v1/search?q=%E6%96%87%E4%B8%80%E8%B7%AF&cursor={quote(c)}"
                  for c in cursors if c][:20], "search")

    # 8. what is here: every building's centroid (and a point off the district)
    crawler.many([f"/api/v1/here?lon={x}&lat={y}" for _, x, y in buildings]
                 + ["/api/v1/here?lon=0&lat=0", "/api/v1/here?lon=120.03&lat=30.25&floor=3"],
                 "here")

    # 9. details and 楼盘表: every parcel and building, every k-th unit, by code and by id
    step = max(1, len(units) // UNIT_SAMPLE)
    crawler.many([f"/api/v1/parcels/{p}" for p in parcels], "parcel_details")
    crawler.many([f"/api/v1/buildings/{b}" for b, _, _ in buildings], "building_details")
    crawler.many([f"/api/v1/buildings/{b}/table" for b, _, _ in buildings], "building_tables")
    crawler.many([f"/api/v1/units/{u}" for u in units[::step]], "unit_details")
    crawler.many([f"/api/v1/parcels/{i}" for i in parcel_ids]
                 + [f"/api/v1/units/{i}" for i in unit_ids], "details_by_id")

    # 10. the public certificate check (一证一码): current and superseded, page and JSON
    from cadastre.documents.certificate import certificate_token

    lookup = load_cipher(test_settings).lookup_key
    current = [v for v, cur in certs if cur]
    old = [v for v, cur in certs if not cur]
    picked = rng.sample(current, min(CERT_SAMPLE, len(current))) + rng.sample(
        old, min(CERT_SAMPLE // 3, len(old)))
    tokens = [certificate_token(lookup, v) for v in picked]
    cert_urls = [u for t in tokens for u in (f"/verify/c/{t}", f"/api/v1/certificates/{t}")]
    cert_urls += ["/verify/c/" + "A" * 22, "/api/v1/certificates/not-a-token"]
    pages = crawler.many(cert_urls, "certificates")
    statuses = Counter(r.json()["status"] for r in pages if r.headers["content-type"].startswith(
        "application/json") and r.status_code == 200)
    assert statuses["valid"] > 0 and statuses["superseded"] > 0
    # the map images of paper certificates' pages (today's maps, the public's view)
    crawler.many([f"/verify/c/{t}/{image}.png" for t in tokens[:6]
                  for image in ("parcel-map", "floor-plan")], "certificates")

    # 10b. case progress (一号查询) with the right code, a wrong one, unknown numbers; the
    # business catalogue and the working-day calendar
    codes = crawl_env["codes"]
    progress = crawler.many([f"/api/v1/progress/{no}?code={c}" for no, c in codes.items()]
                            + [f"/api/v1/progress/{no}?code=WRONG999" for no in list(codes)[:20]]
                            + ["/api/v1/progress/20263301069999999?code=ABCDEFGH",
                               "/api/v1/business-types"]
                            + [f"/api/v1/calendar/{y}" for y in range(2024, 2029)], "cases")
    assert sum(r.status_code == 200 for r in progress) >= len(codes)

    # 11. owners' own documents: their data only, nobody else's
    pdf_checks = own_hits = controls = 0
    cipher = load_cipher(test_settings)
    from api.auth import issue_token
    from cadastre.access.privacy import Role

    token, _ = issue_token(crawl_env["settings"], Role.REGISTRAR, str(uuid.uuid4()))
    registrar = {"Authorization": f"Bearer {token}"}
    electronic: list[bytes] = []       # the owners' electronic certificates and query results
    for unit, cert, name_enc, id_enc in holders[20:400:60]:
        own = _own_needles(url, cipher, unit)
        r = client.post("/api/v1/owner/verify", json={
            "name": cipher.decrypt(name_enc), "id_number": cipher.decrypt(id_enc),
            "certificate_no": cert})
        assert r.status_code == 200, r.text
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        for doc in ("parcel-map.pdf", "floor-plan.pdf", "certificate.pdf", "query-result.pdf"):
            d = client.get(f"/api/v1/owner/units/{unit}/{doc}", headers=h)
            assert d.status_code in (200, 404), d.text[:200]
            if d.status_code != 200:
                continue
            if doc in ("certificate.pdf", "query-result.pdf"):
                electronic.append(d.content)
            before = len(scanner.hits)
            scanner.response(d, "owner_pdfs")
            pdf_checks += 1
            # the owner's own name / ID / certificates may appear on their own documents (and
            # so may a shorter name that is only a part of one of them: 方丽 in 方丽娟)
            mine = [hit for hit in scanner.hits[before:]
                    if any(hit["_value"] in value for value in own)]
            own_hits += len(mine)
            scanner.hits[before:] = [hit for hit in scanner.hits[before:] if hit not in mine]
        # positive control: the same scanner does find PII where the policy lets it out (the
        # owner's own record, a registrar's unit detail), so silence above is not blindness
        before = len(scanner.hits)
        scanner.response(client.get(f"/api/v1/owner/units/{unit}", headers=h), "control")
        scanner.response(client.get(f"/api/v1/units/{unit}", headers=registrar), "control")
        found = {hit["kind"] for hit in scanner.hits[before:]}
        assert {"name", "certificate"} <= found, found
        controls += len(scanner.hits) - before
        del scanner.hits[before:]

    # 11b. 一证一码 of electronic documents: the owners' certificates and query results (their
    # QR codes), every kind of proof, a revoked certificate: page, JSON and the map images
    cert_checks = _electronic_documents(crawler, url, crawl_env["settings"], electronic)

    # 12. error responses (after the owners' checks: failed verifications lock the
    # crawler's address) to PII-laden input: 404/400/401/422 must not echo it
    probes: list[str] = []
    for kind in ("name", "id_number", "phone", "certificate"):
        for v in rng.sample(sorted(needles[kind]), 8):
            q = quote(v, safe="")
            probes += [f"/api/v1/units/{q}", f"/api/v1/parcels/{q}", f"/api/v1/buildings/{q}",
                       f"/api/v1/buildings/{q}/table", f"/styles/{q}.json", f"/sprites/{q}.json",
                       f"/app/{q}", f"/vendor/{q}", f"/ogc/collections/{q}",
                       f"/ogc/collections/{q}/items", f"/ogc/collections/parcels/items/{q}",
                       f"/ogc/collections/parcels/items?limit={q}",
                       f"/ogc/collections/parcels/items?bbox={q}",
                       f"/ogc/collections/parcels/items?datetime={q}",
                       f"/ogc/tileMatrixSets/{q}", f"/tiles/{q}/16/1/1.mvt",
                       f"/tiles/parcels/{q}/1/1.mvt", f"/tiles/units/16/1/1.mvt?floor={q}",
                       f"/glyphs/{q}/0-255.pbf", f"/3dtiles/{q}/tileset.json",
                       f"/3dtiles/demo-units/{q}", f"/raster/{q}/tilejson.json",
                       f"/api/v1/here?lon={q}&lat=30", f"/api/v1/search?q=x&kind={q}",
                       f"/api/v1/search?q=x&cursor={q}", f"/api/v1/search?q=x&limit={q}",
                       f"/verify/c/{q}", f"/api/v1/certificates/{q}",
                       f"/verify/c/{q}/parcel-map.png",
                       f"/api/v1/progress/{q}?code={q}", f"/api/v1/calendar/{q}",
                       f"/api/v1/registry/units/{q}", f"/api/v1/owner/units/{q}",
                       f"/no/such/route/{q}"]
    crawler.many(probes, "errors")
    for (_, cert, _, id_enc), (_, _, other_name, _) in zip(holders[:10], holders[10:20],
                                                           strict=True):
        wrong = {"name": cipher.decrypt(other_name), "id_number": cipher.decrypt(id_enc),
                 "certificate_no": cert}
        r = crawler.post("/api/v1/owner/verify", "errors", json=wrong)
        assert r.status_code in (401, 429)
        crawler.post("/api/v1/owner/verify-qr", "errors",
                     json={"qr_token": "A" * 22, "id_number": cipher.decrypt(id_enc)})
        crawler.post("/api/v1/auth/login", "errors",
                     json={"username": cipher.decrypt(id_enc), "password": cert})
        crawler.post("/api/v1/auth/login", "errors", json={"username": cert * 3})
        crawler.post("/api/v1/certificates/check", "errors",
                     json={"certificate_no": cert, "id_number": cipher.decrypt(id_enc)})
    # every GET of the spec, anonymously with no parameters filled in (401s, 404s, 422s)
    crawler.many([re.sub(r"\{[^}]+\}", "x", p) for p in get_templates], "errors")

    # coverage: every GET operation of the spec answered the public with content somewhere in
    # the crawl, or refused it (401: not public), or has no data in this setup
    answered: dict[str, Counter[int]] = {t: Counter() for t in get_templates}
    for method, path, status in crawler.seen:
        for t in get_templates:
            if method == "get" and _matches(t, unquote(path)):
                answered[t][status] += 1
    uncovered = [t for t, st in answered.items()
                 if not any(200 <= s < 300 for s in st) and 401 not in st and t not in NO_DATA]
    assert not uncovered, {t: dict(answered[t]) for t in uncovered}

    elapsed = time.monotonic() - t0
    report = {
        "requests": scanner.requests,
        "bytes_received": scanner.bytes,
        "characters_scanned": scanner.scanned_chars,
        "mvt_features_decoded": scanner.mvt_features,
        "seconds": round(elapsed, 1),
        "seconds_loading_needles": round(t_needles, 1),
        "needles": {k: len(v) for k, v in needles.items()},
        "statuses": {str(k): v for k, v in sorted(scanner.statuses.items())},
        "sections": {k: dict(v) for k, v in scanner.sections.items()},
        "section_seconds": {k: round(v, 1) for k, v in crawler.timings.items()},
        "operations": {t: dict(sorted(st.items())) for t, st in answered.items()},
        "coverage": {"get_operations_in_spec": len(get_templates),
                     "tiles_all_layers_z14_18": len(grid), "tiles_floor_layer": len(floor_tiles),
                     "ogc_item_pages": item_pages, "search_queries": len(search_urls),
                     "here_points": len(buildings) + 2, "parcel_details": len(parcels),
                     "building_details": len(buildings), "building_tables": len(buildings),
                     "unit_details": len(units[::step]), "units_total": len(units),
                     "certificate_checks": len(cert_urls),
                     "electronic_document_checks": cert_checks, "error_probes": len(probes),
                     "owner_pdfs": pdf_checks, "3d_files": len(three_d)},
        "owner_pdf_hits_of_their_own_data": own_hits,
        "positive_control_hits": controls,
        "hits": len(scanner.hits),
        "hit_details": [{k: v for k, v in h.items() if k != "_value"} for h in scanner.hits[:50]],
    }
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(json.dumps({k: report[k] for k in ("requests", "bytes_received", "seconds", "hits")}))
    assert pdf_checks >= 4
    assert not scanner.hits, [{k: v for k, v in h.items() if k != "_value"}
                              for h in scanner.hits[:20]]


def _electronic_documents(crawler: Crawler, url: str, settings: Settings,
                          owners_pdfs: list[bytes]) -> int:
    """Issue a proof of every kind and revoke one certificate in the demo (no register change),
    then crawl the verification page, JSON and images of every electronic document's QR."""
    from cadastre.certificates import IssuingContext, electronic_copy, revoke_certificate, store
    from tests.certificate_support import qr_on_page, url_path

    ctx = IssuingContext.from_settings(settings)
    tokens: list[str] = []
    with psycopg.connect(url) as conn:
        for kind in ("mortgage", "pre_notice", "objection", "easement", "seizure", "land_use"):
            row = conn.execute(
                "SELECT version_id FROM cad.right_record r WHERE kind = %s AND valid_to IS NULL "
                "AND status = 1 AND NOT EXISTS (SELECT 1 FROM cad.certificate c WHERE "
                "c.right_version_id = r.version_id) ORDER BY version_id LIMIT 1",
                (kind,)).fetchone()
            if row is None:
                continue
            rec = electronic_copy(conn, ctx, row[0], actor="cli:crawl")
            owners_pdfs.append(store.document(conn, rec.certificate_id))
            if kind == "land_use":
                revoke_certificate(conn, ctx, rec.certificate_id, reason="crawl", actor="cli:crawl")
        conn.commit()
    for pdf in owners_pdfs:
        found = qr_on_page(pdf)
        assert len(found) == 1
        tokens.append(url_path(found[0]).rsplit("/", 1)[1])
    pages = crawler.many([u for t in tokens for u in (f"/verify/c/{t}",
                                                      f"/api/v1/certificates/{t}")],
                         "certificates_electronic")
    views = [r.json() for r in pages if r.headers["content-type"].startswith("application/json")]
    statuses = Counter(v["status"] for v in views)
    assert statuses["valid"] >= 4 and statuses["revoked"] == 1, statuses
    images = [f"/verify/c/{t}/{name}.png" for t, v in zip(tokens, views, strict=True)
              for name in v["images"]]
    assert images
    crawler.many(images, "certificates_electronic")
    return len(pages) + len(images)


def _own_needles(url: str, cipher: Any, unit: str) -> set[str]:
    """The needles an owner may see on their own unit's documents: the parties and
    certificates of the unit's own rights."""
    own: set[str] = set()
    with psycopg.connect(url) as conn:
        for name, idn, phone, cert in conn.execute(
                "SELECT p.name_enc, p.id_number_enc, p.phone_enc, r.certificate_no "
                "FROM cad.right_record r JOIN cad.right_party rp ON rp.right_version_id = "
                "r.version_id JOIN pii.party p USING (party_id) WHERE r.unit_code = %s", (unit,)):
            idn_text = _norm(cipher.decrypt(idn) or "")
            own |= {_norm(cipher.decrypt(name) or ""), idn_text, idn_text.lower()}
            if cert:
                own.add(_norm(cert))
            if phone:
                own.add(_norm(cipher.decrypt(phone) or ""))
    return own


def _matches(template: str, path: str) -> bool:
    pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
    if template.endswith("{path}"):
        pattern = pattern.replace("[^/]+$", ".+$")
    return re.match(pattern, path) is not None
