"""QA results as rows, GeoJSON and CSV; scopes from user options."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

import psycopg

from cadastre.errors import InvalidInput, NotFound
from cadastre.qa.scope import Scope


def scope_from_options(bbox: str | None, parcels: list[str] | None) -> Scope:
    if bbox and parcels:
        raise InvalidInput("QA_SCOPE", "bbox 与 parcel 只能选一个 / give a bbox or parcels")
    if parcels:
        return Scope("parcels", codes=tuple(parcels))
    if bbox:
        from pyproj import Transformer

        try:
            w, s, e, n = (float(v) for v in bbox.split(","))
        except ValueError:
            raise InvalidInput("BBOX_INVALID", "bbox 应为 lon1,lat1,lon2,lat2 / bbox must be "
                               "lon1,lat1,lon2,lat2") from None
        if not (-180 <= w < e <= 180 and -85 <= s < n <= 85):
            raise InvalidInput("BBOX_INVALID", "bbox 超出范围 / bbox out of range")
        t = Transformer.from_crs(4326, 3857, always_xy=True)
        x0, y0 = t.transform(w, s)
        x1, y1 = t.transform(e, n)
        return Scope("bbox", bbox_3857=(x0, y0, x1, y1))
    return Scope("district")


_ROWS = """
SELECT f.finding_id, f.rule_id, f.category, f.severity, f.subject, f.measure, f.message,
       f.status, f.status_reason, ST_AsGeoJSON(ST_Transform(f.geom_3857, 4326), 7)
FROM cad.qa_finding f WHERE f.run_id = %s ORDER BY f.rule_id, f.subject"""


def findings_rows(conn: psycopg.Connection, run_id: uuid.UUID) -> list[dict[str, Any]]:
    if conn.execute("SELECT 1 FROM cad.qa_run WHERE run_id = %s", (run_id,)).fetchone() is None:
        raise NotFound("QA_RUN_NOT_FOUND", "无此质检批次 / no such QA run")
    out = []
    for fid, rule, cat, sev, subject, measure, msg, status, reason, geom in conn.execute(
            _ROWS, (run_id,)):
        out.append({"id": str(fid), "rule": rule, "category": cat, "severity": sev,
                    "subject": list(subject), "measure": measure, "message": msg,
                    "status": status, "status_reason": reason,
                    "geometry": json.loads(geom) if geom else None})
    return out


def findings_geojson(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": r["id"], "geometry": r["geometry"],
         "properties": {k: v for k, v in r.items() if k != "geometry"}} for r in rows]}


def findings_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    cols = ["id", "rule", "category", "severity", "subject", "measure", "status", "message"]
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "subject": ";".join(r["subject"])})
    return buf.getvalue()
