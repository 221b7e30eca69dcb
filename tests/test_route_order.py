"""The public reads' router is matched first (issue #18: routes are tried in order, and these
take most requests); that is safe only while no other route answers one of their paths."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

from cadastre.settings import Settings

SAMPLES = ("x", "330106001001GB00001F00010001", "330106001001GB00001", "1", "table", "search",
           "here", "documents", "a.b", "a/b")


def _routes(routes: list[Any]) -> Iterator[Any]:
    for r in routes:
        if hasattr(r, "path_regex"):
            yield r
        elif hasattr(r, "original_router"):
            yield from _routes(r.original_router.routes)
        elif hasattr(r, "routes"):
            yield from _routes(r.routes)


def _paths(path: str) -> list[str]:
    out = [path]
    for name in re.findall(r"{([^}]+)}", path):
        out = [p.replace("{" + name + "}", s, 1) for p in out for s in SAMPLES]
    return out


def test_no_other_route_answers_a_public_read(test_settings: Settings, tmp_path) -> None:
    from api.app import create_app

    app = create_app(Settings(storage={"data_dir": tmp_path},
                              database={"url": "postgresql://unused/none"}))
    routes = list(_routes(app.routes))
    public = [r for r in routes if r.endpoint.__module__ == "api.routers.public"]
    assert {r.path for r in public} >= {"/api/v1/search", "/api/v1/here",
                                        "/api/v1/units/{ref}", "/api/v1/buildings/{ref}/table"}
    # the public router comes first among the routers' routes
    ours = [r for r in routes if r.endpoint.__module__.startswith("api.routers.")]
    assert ours[:len(public)] == public
    clashes = []
    for p, o in itertools.product(public, routes):
        if o is p or not set(getattr(o, "methods", None) or {"GET"}) & set(p.methods):
            continue
        clashes += [(p.path, o.path, x) for x in _paths(p.path) + _paths(o.path)
                    if p.path_regex.match(x) and o.path_regex.match(x)]
    assert clashes == []
