"""Small helpers shared by test modules: free ports for real servers, the npm tools the tests
run (installed by ``scripts/setup.sh --test``; a test run never downloads anything), and an
audit chain to check."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import psycopg
import pytest

from cadastre import audit

TESTS = Path(__file__).parent
NPM_TOOLS = TESTS / ".npm-tools"   # MapLibre style validator
NPM_3D = TESTS / ".npm-3d"         # Khronos glTF validator, 3d-tiles-tools


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def npm_package(folder: Path, package: str) -> Path:
    """``folder/node_modules/package``, installed from ``folder/package-lock.json`` by
    ``scripts/setup.sh --test``. Skips without node; fails (with the command to run) when the
    setup step has not run."""
    if shutil.which("node") is None:
        pytest.skip(f"node is not installed: {package} cannot run")
    path = folder / "node_modules" / package
    if not path.is_dir():
        pytest.fail(f"{path.relative_to(TESTS.parent)} is missing: run scripts/setup.sh --test "
                    "(it installs the tests' npm tools)")
    return path


def seal_audit_rows(url: str, key: bytes, count: int) -> None:
    """Append ``count`` audit rows (registrar unit reads; every fifth with a purpose and case
    number) sealed with ``key`` to the database at ``url``."""
    with psycopg.connect(url) as conn:
        for i in range(count):
            audit.append(conn, key, audit.Entry(
                actor=f"00000000-0000-0000-0000-{i % 7:012d}", role="registrar",
                action="unit.read", target=f"330106001001GB{i:05d}F00010001", result_count=1,
                purpose="litigation" if i % 5 == 0 else None,
                case_ref="(2024)浙0106民初1234号" if i % 5 == 0 else None))
        conn.commit()


def serve_process(url: str, data_dir: Path):  # noqa: ANN201
    """A real ``cadastre serve`` on a free port for a database and data dir, answering
    ``/health``; returns ``(process, base URL)``. The caller stops or kills it."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "CADASTRE_PORT": str(port),
           "CADASTRE_DATA_DIR": str(data_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    return proc, base
