"""Real ``cadastre serve`` processes for the scaling tests: several workers, their access log
(each line names the worker process that answered), and requests on fresh connections whose
client port finds their line in that log."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port

ACCESS = re.compile(r"\[(\d+)\] 127\.0\.0\.1:(\d+) - \"(\S+) (\S+)")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    client_port: int

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    log: Path

    def request(self, method: str, path: str, body: dict | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        """One request on a new connection (the kernel hands it to any worker)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.connect()
            client_port = conn.sock.getsockname()[1]
            data = json.dumps(body).encode() if body is not None else None
            hdrs = {"Content-Type": "application/json"} if data else {}
            conn.request(method, path, body=data, headers={**hdrs, **(headers or {})})
            r = conn.getresponse()
            return Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read(),
                          client_port)
        finally:
            conn.close()

    def worker_of(self, answers: list[Answer], timeout: float = 10) -> dict[int, int]:
        """client port → pid of the worker that answered it (from the access log)."""
        want = {a.client_port for a in answers}
        deadline = time.monotonic() + timeout
        found: dict[int, int] = {}
        while time.monotonic() < deadline:
            found = {int(m.group(2)): int(m.group(1))
                     for m in ACCESS.finditer(self.log.read_text(errors="replace"))
                     if int(m.group(2)) in want}
            if len(found) == len(want):
                break
            time.sleep(0.2)
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_server(url: str | None, data_dir: Path, log: Path, workers: int = 1,
                 args: tuple[str, ...] = (), **env: str) -> Server:
    """``cadastre serve`` on ``url`` (None: the embedded cluster of ``data_dir``), with the
    further command-line ``args``."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if url is not None:
        base["DATABASE_URL"] = url
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(port),
             "--workers", str(workers), *args],
            env={**base, "CADASTRE_DATA_DIR": str(data_dir), **env},
            stdout=out, stderr=subprocess.STDOUT)
    server = Server(proc, port, log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("cadastre serve exited:\n" + log.read_text(errors="replace"))
        # every worker has started its application when the log says so N times
        if log.read_text(errors="replace").count("Application startup complete") >= workers:
            try:
                if server.request("GET", "/health").status == 200:
                    return server
            except OSError:
                pass
        time.sleep(0.3)
    server.stop()
    raise AssertionError("cadastre serve did not start:\n" + log.read_text(errors="replace"))


def parcel_tile(url: str, z: int = 17, offset: int = 3) -> tuple[str, str, str]:
    """A parcel, the path of the public parcels tile at zoom ``z`` holding its centre, and the
    WKT of its boundary moved ``offset`` metres east (a registrar's boundary correction)."""
    import mercantile
    import psycopg

    with psycopg.connect(url) as conn:
        code, wkt, lon, lat = conn.execute(
            "SELECT parcel_code, ST_AsText(ST_GeometryN(geom, 1)), "
            "ST_X(ST_Transform(ST_PointOnSurface(geom), 4326)), "
            "ST_Y(ST_Transform(ST_PointOnSurface(geom), 4326)) FROM cad.parcel "
            "WHERE valid_to IS NULL ORDER BY parcel_code LIMIT 1 OFFSET 3").fetchone()
        moved = conn.execute("SELECT ST_AsText(ST_Translate(ST_GeomFromText(%s), %s, 0))",
                             (wkt, offset)).fetchone()[0]
    t = mercantile.tile(lon, lat, z)
    return code, f"/tiles/parcels/{t.z}/{t.x}/{t.y}.mvt", moved


def move_parcel(url: str, code: str, wkt: str) -> None:
    """Commit a new boundary version of parcel ``code`` (queues and notifies the invalidation)."""
    import psycopg

    from cadastre.register.versions import replace_parcel_geometry

    with psycopg.connect(url) as conn:
        replace_parcel_geometry(conn, code, wkt, "test registrar")
