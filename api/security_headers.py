"""The security headers of every response (``api.guards.SecurityHeaders``).

The Content-Security-Policy is the one the viewer runs under, checked in Chromium with no
violations on the 2D map, the 3D scene and the API docs (``tests/test_http_hardening_browser.py``):

* scripts only from this server; ``'wasm-unsafe-eval'`` for CesiumJS's WebAssembly decoders
  (Draco, KTX2). No ``eval`` of strings anywhere except in the viewer's own HTML documents
  (``VIEWER_CSP``, set by ``api/routers/viewer.py``): CesiumJS 1.140 builds functions from
  strings when it loads (Emscripten embind glue in ``Cesium.js``, knockout bindings of its
  widgets) and does not start without ``'unsafe-eval'``; the 2D page loads CesiumJS in the same
  document when the 3D button is pressed. JSON, tiles, ``/docs``, ``/redoc`` and every other
  response keep the strict policy;
* workers from this server and ``blob:`` (MapLibre starts its workers from a blob URL, CesiumJS
  from its ``Workers/`` folder);
* styles from this server plus inline ``style`` attributes (MapLibre, CesiumJS and Redoc set
  element styles at run time);
* images, fonts and fetches from this server, ``data:`` and ``blob:`` (decoded tiles, glyphs);
* no plugins, no framing by anyone (``frame-ancestors 'none'``: the sign-in screens live in the
  viewer), forms only to this server, ``<base>`` only this server.
"""

from __future__ import annotations

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self' blob:",
    "child-src 'self' blob:",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self' data: blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

# the viewer's documents (index.html, 3d.html): CesiumJS needs string evaluation (see above)
# and its workers, started from blob: URLs, load their code with importScripts(blob:)
VIEWER_CSP = CSP.replace("script-src 'self' 'wasm-unsafe-eval'",
                         "script-src 'self' blob: 'wasm-unsafe-eval' 'unsafe-eval'")

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(self)"),
]
