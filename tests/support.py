"""Small helpers shared by test modules: free ports for real servers, and the npm tools the tests
run (installed by ``scripts/setup.sh --test``; a test run never downloads anything)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

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
