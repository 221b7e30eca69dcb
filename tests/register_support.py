"""The register's fingerprint: row count and content hash of every register table, to show that
a refused or interrupted change wrote nothing."""

from __future__ import annotations

import psycopg

REGISTRY_TABLES = ("cad.parcel", "cad.boundary_point", "cad.boundary_line", "cad.building",
                   "cad.floor", "cad.unit", "cad.lineage", "cad.right_record", "pii.party")
RIGHT_TABLES = ("cad.right_party", "cad.ownership_detail", "cad.mortgage_detail",
                "cad.pre_notice_detail", "cad.seizure_detail", "cad.objection_detail",
                "cad.easement_detail", "cad.cancellation_detail", "cad.change_set",
                "cad.unit_status")
REGISTER_TABLES = REGISTRY_TABLES + RIGHT_TABLES


def fingerprint(url: str, tables: tuple[str, ...] = REGISTRY_TABLES) -> dict[str, str]:
    """Row count and a content hash of every table in ``tables``."""
    out = {}
    with psycopg.connect(url) as conn:
        for t in tables:
            cols = "x::text" if t != "cad.unit_status" else \
                "(x.unit_code, x.registration_status, x.mortgaged, x.seized, x.pre_noticed, " \
                "x.objected)::text"
            out[t] = conn.execute(
                f"SELECT count(*) || ':' || coalesce(md5(string_agg(md5({cols}), '' "
                f"ORDER BY md5({cols}))), '') FROM {t} x").fetchone()[0]
    return out
