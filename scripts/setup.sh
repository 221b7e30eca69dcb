#!/usr/bin/env bash
# Install what the project needs on Debian 12 / Ubuntu (22.04+), as root or with sudo:
# system packages (PostgreSQL + PostGIS, GDAL, fonts, ...), the Python virtualenv in .venv,
# and the project itself, with the pinned versions of requirements/constraints.txt.
#
#   scripts/setup.sh          what the server and the demo need (command 1)
#   scripts/setup.sh --test   also the test tools (command 2): the test extra (pytest, ruff, mypy,
#                             Playwright, ...), Debian's chromium, and the npm validators the
#                             tests run (tests/.npm-tools, tests/.npm-3d), so no test downloads
#
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TEST=0
for arg in "$@"; do
  case "$arg" in
    --test) TEST=1 ;;
    *) echo "usage: scripts/setup.sh [--test]" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

pkg_ok() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
APT_UPDATED=""
apt_update() {
  if [ -z "$APT_UPDATED" ]; then $SUDO apt-get update -q >/dev/null; APT_UPDATED=1; fi
}

# ---- PostgreSQL major with PostGIS: what is installed, else what the distribution offers
PG="${CADASTRE_PG_MAJOR:-}"
if [ -z "$PG" ]; then
  for v in 15 16 17 14; do
    if pkg_ok "postgresql-$v-postgis-3"; then PG=$v; break; fi
  done
fi
if [ -z "$PG" ]; then
  apt_update
  for v in 15 16 17 14; do
    if apt-cache show "postgresql-$v-postgis-3" >/dev/null 2>&1; then PG=$v; break; fi
  done
fi
[ -n "$PG" ] || { echo "no postgresql-NN-postgis-3 package found (need PostgreSQL 14-17)"; exit 1; }

# ---- Python >= 3.11
PY=""
for p in python3.13 python3.12 python3.11 python3; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c "import sys; sys.exit(sys.version_info < (3, 11))" 2>/dev/null; then
    PY=$(command -v "$p"); break
  fi
done

PKGS=(
  "postgresql-$PG" "postgresql-$PG-postgis-3" "postgresql-client-$PG" postgresql-contrib
  gdal-bin fonts-noto-cjk ca-certificates openscenegraph proj-data   # proj-data: EGM96 geoid (3D heights)
  libpango-1.0-0 libpangoft2-1.0-0   # WeasyPrint: 宗地图 / 分层分户图 PDFs
  pgbouncer                          # cadastre serve --pgbouncer (its own files, never the service)
)
if [ "$TEST" -eq 1 ]; then PKGS+=(chromium); fi   # viewer tests: Playwright drives Debian's chromium
# certificate tests: poppler's pdfsig, and certutil for the trust store it reads
if [ "$TEST" -eq 1 ]; then PKGS+=(poppler-utils libnss3-tools); fi
# scaling tests: nginx in front of the server (a subprocess with its own prefix, never the
# system service)
if [ "$TEST" -eq 1 ]; then PKGS+=(nginx-light); fi
# node + npm: the viewer's packages (and for the tests the validators they run: gltf-validator, …)
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
if [ -z "$PY" ]; then PKGS+=(python3.11 python3.11-venv python3.11-dev); fi
MISSING=()
for p in "${PKGS[@]}"; do pkg_ok "$p" || MISSING+=("$p"); done
if [ -n "$PY" ] && ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  v=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  MISSING+=("python$v-venv")
fi
if [ ${#MISSING[@]} -gt 0 ]; then
  echo "installing system packages: ${MISSING[*]}"
  apt_update
  # the project runs its own cluster; don't let the package create and start a 'main' one
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    $SUDO mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  $SUDO apt-get install -y -q --no-install-recommends "${MISSING[@]}" >/dev/null
fi
if [ -z "$PY" ]; then PY=$(command -v python3.11); fi

# ---- virtualenv + project, pinned by requirements/constraints.txt (regenerate: scripts/lock.sh);
# re-installed only when pyproject.toml, the pins or the chosen extras change. The server's
# optional readers (point clouds, IFC) are part of what it serves; the test extra only for --test.
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
EXTRAS="pointcloud,ifc"
if [ "$TEST" -eq 1 ]; then EXTRAS="test,$EXTRAS"; fi
STAMP=.venv/.cadastre-installed
HASH=$(cat pyproject.toml requirements/constraints.txt | sha256sum | cut -d' ' -f1)
installed_extras() { [ -f "$STAMP" ] && sed -n 2p "$STAMP"; }
if [ ! -f "$STAMP" ] || [ "$(head -1 "$STAMP")" != "$HASH" ] \
   || { [ "$TEST" -eq 1 ] && [ "$(installed_extras)" != "$EXTRAS" ]; }; then
  echo "installing Python dependencies into .venv ($EXTRAS)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c requirements/constraints.txt -e ".[$EXTRAS]"
  printf '%s\n%s\n' "$HASH" "$EXTRAS" > "$STAMP"
fi
# ---- web viewer: viewer/dist, rebuilt only when its sources or package-lock.json changed
bash scripts/build_viewer.sh
# ---- test tools from npm (exact versions from their package-lock.json), installed here so the
# test run itself never downloads anything
if [ "$TEST" -eq 1 ]; then
  for dir in tests/.npm-tools tests/.npm-3d; do
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
      echo "installing test tools in $dir (npm ci)"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
      touch "$dir/node_modules"
    fi
  done
fi
echo "setup done: PostgreSQL $PG + PostGIS, $(.venv/bin/python --version) in $ROOT/.venv"
