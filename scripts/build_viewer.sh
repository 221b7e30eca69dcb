#!/usr/bin/env bash
# Build the web viewer into viewer/dist: no bundler, plain ES modules plus the vendor builds of
# MapLibre GL JS and CesiumJS copied from node_modules, so the viewer needs no internet at run
# time. Works with Debian 12's apt nodejs 18 / npm 9.
#
#   scripts/build_viewer.sh           build when sources or package-lock.json changed
#   scripts/build_viewer.sh --force   build anyway
#
# Layout of viewer/dist (the server sets the caching):
#   index.html                          no-cache; points at the hashed folders below
#   app/<hash of the sources>/…         our modules and CSS (immutable, long cache)
#   vendor/maplibre-gl-<version>/…      maplibre-gl.js, maplibre-gl.css (immutable)
#   vendor/cesium-<version>/…           Cesium.js, Assets, Workers, ThirdParty, Widgets (immutable)
#   vendor/swagger-ui-<version>/…       Swagger UI for /docs; vendor/redoc-<version>/ Redoc for /redoc
#   build.json                          versions, paths and sizes
# Text files also get a .gz twin (served when the browser accepts gzip).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VIEWER="$ROOT/viewer"
DIST="$VIEWER/dist"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

command -v node >/dev/null 2>&1 || { echo "build_viewer: node is missing (apt-get install nodejs npm)" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "build_viewer: npm is missing (apt-get install npm)" >&2; exit 1; }

cd "$VIEWER"

# ---- packages: npm ci when node_modules is missing or older than the lock file
if [ ! -d node_modules/maplibre-gl/dist ] || [ ! -d node_modules/cesium/Build/Cesium ] \
   || [ ! -d node_modules/swagger-ui-dist ] || [ ! -f node_modules/redoc/bundles/redoc.standalone.js ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "build_viewer: installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

version() { node -p "require('./node_modules/$1/package.json').version"; }
MAPLIBRE_VERSION=$(version maplibre-gl)
CESIUM_VERSION=$(version cesium)
SWAGGER_VERSION=$(version swagger-ui-dist)
REDOC_VERSION=$(version redoc)

# ---- up to date? (sources, index template, lock file, this script)
STAMP=$( { find src -type f -print0 | sort -z | xargs -0 sha256sum;
           sha256sum index.html package-lock.json "$ROOT/scripts/build_viewer.sh";
           echo "$MAPLIBRE_VERSION $CESIUM_VERSION $SWAGGER_VERSION $REDOC_VERSION"; } | sha256sum | cut -c1-16)
if [ "$FORCE" = 0 ] && [ -f "$DIST/.stamp" ] && [ "$(cat "$DIST/.stamp")" = "$STAMP" ]; then
  echo "build_viewer: viewer/dist is up to date ($STAMP)"
  exit 0
fi

APP_HASH=$( { find src -type f -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-10)
TMP="$VIEWER/.dist-tmp-$$"
rm -rf "$TMP"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/app/$APP_HASH" "$TMP/vendor"

# ---- our sources (each module syntax-checked as an ES module first)
mkdir -p "$TMP/check"
for f in src/*.js; do
  cp "$f" "$TMP/check/$(basename "$f" .js).mjs"
  node --check "$TMP/check/$(basename "$f" .js).mjs" || { echo "build_viewer: syntax error in $f" >&2; exit 1; }
done
rm -rf "$TMP/check"
cp -R src/. "$TMP/app/$APP_HASH/"

# ---- MapLibre GL JS (UMD build: defines window.maplibregl)
ML="$TMP/vendor/maplibre-gl-$MAPLIBRE_VERSION"
mkdir -p "$ML"
cp node_modules/maplibre-gl/dist/maplibre-gl.js node_modules/maplibre-gl/dist/maplibre-gl.css \
   node_modules/maplibre-gl/LICENSE.txt "$ML/"

# ---- CesiumJS (Cesium.js defines window.Cesium; CESIUM_BASE_URL must point at this folder)
CS="$TMP/vendor/cesium-$CESIUM_VERSION"
mkdir -p "$CS"
cp -R node_modules/cesium/Build/Cesium/Cesium.js node_modules/cesium/Build/Cesium/Assets \
      node_modules/cesium/Build/Cesium/Workers node_modules/cesium/Build/Cesium/ThirdParty \
      node_modules/cesium/Build/Cesium/Widgets "$CS/"
cp node_modules/cesium/LICENSE.md "$CS/" 2>/dev/null || true

# ---- API docs (/docs, /redoc) from local files: Swagger UI and Redoc (no CDN at run time)
SW="$TMP/vendor/swagger-ui-$SWAGGER_VERSION"
mkdir -p "$SW"
cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
   node_modules/swagger-ui-dist/LICENSE node_modules/swagger-ui-dist/oauth2-redirect.html "$SW/"
RD="$TMP/vendor/redoc-$REDOC_VERSION"
mkdir -p "$RD"
cp node_modules/redoc/LICENSE "$RD/"
# its "powered by" badge is the one CDN reference: an empty image instead (no request leaves)
sed -e 's#https://cdn.redoc.ly/redoc/logo-mini.svg#data:image/svg+xml,%3Csvg xmlns=%22http://www.w3.org/2000/svg%22/%3E#g' \
    node_modules/redoc/bundles/redoc.standalone.js > "$RD/redoc.standalone.js"
grep -q "cdn.redoc.ly" "$RD/redoc.standalone.js" && { echo "build_viewer: redoc still names a CDN" >&2; exit 1; }

# ---- index.html from the template
sed -e "s#__APP__#app/$APP_HASH#g" \
    -e "s#__MAPLIBRE__#vendor/maplibre-gl-$MAPLIBRE_VERSION#g" \
    -e "s#__CESIUM__#vendor/cesium-$CESIUM_VERSION#g" \
    index.html > "$TMP/index.html"

# ---- gzip twins of text files (the server sends them as Content-Encoding: gzip)
find "$TMP" -type f \( -name '*.js' -o -name '*.css' -o -name '*.json' -o -name '*.html' \
     -o -name '*.svg' -o -name '*.glsl' \) -size +1k -print0 | xargs -0 -r gzip -9 -k -n

# ---- sizes
bytes() { find "$1" -type f ! -name '*.gz' -print0 | du -cb --files0-from=- | tail -1 | cut -f1; }
gzbytes() {   # what goes over the wire: the .gz twin where there is one
  local total=0 f s
  while IFS= read -r -d '' f; do
    if [ -f "$f.gz" ]; then s=$(stat -c %s "$f.gz"); else s=$(stat -c %s "$f"); fi
    total=$((total + s))
  done < <(find "$1" -type f ! -name '*.gz' -print0)
  echo "$total"
}
APP_B=$(bytes "$TMP/app"); APP_GZ=$(gzbytes "$TMP/app")
ML_B=$(bytes "$ML"); ML_GZ=$(gzbytes "$ML")
CS_B=$(bytes "$CS"); CS_GZ=$(gzbytes "$CS")
FIRST_B=$((APP_B + $(stat -c %s "$ML/maplibre-gl.js") + $(stat -c %s "$ML/maplibre-gl.css")))
FIRST_GZ=$((APP_GZ + $(stat -c %s "$ML/maplibre-gl.js.gz") + $(stat -c %s "$ML/maplibre-gl.css.gz")))
cat > "$TMP/build.json" <<EOF
{"stamp": "$STAMP", "app": "app/$APP_HASH",
 "maplibre": {"version": "$MAPLIBRE_VERSION", "path": "vendor/maplibre-gl-$MAPLIBRE_VERSION"},
 "cesium": {"version": "$CESIUM_VERSION", "path": "vendor/cesium-$CESIUM_VERSION"},
 "swagger_ui": {"version": "$SWAGGER_VERSION", "path": "vendor/swagger-ui-$SWAGGER_VERSION"},
 "redoc": {"version": "$REDOC_VERSION", "path": "vendor/redoc-$REDOC_VERSION"},
 "bytes": {"app": $APP_B, "maplibre": $ML_B, "cesium": $CS_B, "first_view": $FIRST_B},
 "gzip_bytes": {"app": $APP_GZ, "maplibre": $ML_GZ, "cesium": $CS_GZ, "first_view": $FIRST_GZ}}
EOF
echo "$STAMP" > "$TMP/.stamp"

# ---- swap in (a reader sees the old or the new tree, briefly none)
rm -rf "$DIST.old"
[ -d "$DIST" ] && mv "$DIST" "$DIST.old"
mv "$TMP" "$DIST"
trap - EXIT
rm -rf "$DIST.old"

mb() { awk -v b="$1" 'BEGIN { printf "%.2f MB", b / 1048576 }'; }
echo "build_viewer: viewer/dist built ($STAMP)"
echo "  our code           $(mb "$APP_B") ($(mb "$APP_GZ") gzip)"
echo "  MapLibre GL JS $MAPLIBRE_VERSION $(mb "$ML_B") ($(mb "$ML_GZ") gzip)"
echo "  CesiumJS $CESIUM_VERSION    $(mb "$CS_B") ($(mb "$CS_GZ") gzip), loaded only for 3D"
echo "  first 2D view      $(mb "$FIRST_B") ($(mb "$FIRST_GZ") gzip)"
echo "  total              $(mb "$(bytes "$DIST")")"
