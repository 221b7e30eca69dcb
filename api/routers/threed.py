"""3D Tiles: ``/3dtiles/{name}/…`` files (MIME types, ETag/304, Cache-Control, gzip for JSON) and
``/api/v1/3d/datasets``. Routes are plain ``def`` (file I/O runs in the thread pool)."""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from api.auditing import record_sync
from api.auth import require
from api.httpcache import Policy, respond, strong_etag
from api.state import app_settings, app_state
from cadastre.access.principal import Principal
from cadastre.access.privacy import Role
from cadastre.errors import InvalidInput, NotFound
from cadastre.jobs import create_job, get_job
from tiles.threed.errors import DatasetNotFound
from tiles.threed.registry import dataset_dir, get_dataset, list_datasets

router = APIRouter(tags=["3d"])

CACHING = Policy("public, max-age=3600")
MIME = {
    ".json": "application/json",
    ".glb": "model/gltf-binary",
    ".gltf": "model/gltf+json",
    ".b3dm": "application/octet-stream",
    ".pnts": "application/octet-stream",
    ".i3dm": "application/octet-stream",
    ".cmpt": "application/octet-stream",
    ".subtree": "application/octet-stream",
    ".bin": "application/octet-stream",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".ktx2": "image/ktx2",
    ".webp": "image/webp",
}
HIDDEN = {"dataset.json"}


class DatasetSummary(BaseModel):
    name: str
    kind: str
    created: str
    extent: list[float]
    heights: list[float]
    tiles: int
    bytes: int
    srs: str
    warnings: int
    tileset: str


class DatasetList(BaseModel):
    datasets: list[DatasetSummary]


def _data_dir(request: Request) -> Path:
    return Path(app_settings(request).data_dir)


def _not_found(name: str, path: str) -> DatasetNotFound:
    """One fixed answer: nothing of the requested name or path comes back."""
    return DatasetNotFound(message="三维数据集中无此文件 / no such file in the 3D dataset")


def _resolve(request: Request, name: str, path: str) -> Path:
    root = dataset_dir(_data_dir(request), name).resolve()
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if (
        not parts
        or any(p == ".." or "\\" in p or p.startswith(".") for p in parts)
        or parts[-1] in HIDDEN
    ):
        raise _not_found(name, path)
    target = root.joinpath(*parts).resolve()
    if not target.is_relative_to(root) or not target.is_file() or target.suffix.lower() not in MIME:
        raise _not_found(name, path)
    return target


def _serve(request: Request, name: str, path: str) -> Response:
    target = _resolve(request, name, path)
    st = target.stat()
    etag = strong_etag(str(target), str(st.st_size), str(st.st_mtime_ns))
    mime = MIME[target.suffix.lower()]
    gzipped = None
    if mime == "application/json" and st.st_size > 512:
        gzipped = lambda: gzip.compress(target.read_bytes(), compresslevel=6, mtime=0)  # noqa: E731
    return respond(request, etag, CACHING, mime, target, gzipped)


@router.get(
    "/3dtiles/{name}/tileset.json",
    summary="三维瓦片集 / 3D Tiles tileset",
    name="threed_tileset",
    response_class=Response,
)
def tileset(request: Request, name: str) -> Response:
    get_dataset(_data_dir(request), name)
    return _serve(request, name, "tileset.json")


@router.get(
    "/3dtiles/{name}/{path:path}",
    summary="三维瓦片内容 / 3D Tiles content",
    response_class=Response,
)
def content(request: Request, name: str, path: str) -> Response:
    return _serve(request, name, path)


@router.get(
    "/api/v1/3d/datasets", summary="三维数据集 / published 3D datasets", response_model=DatasetList
)
def datasets(request: Request) -> DatasetList:
    out = []
    for d in list_datasets(_data_dir(request)):
        out.append(
            DatasetSummary(
                name=d.name,
                kind=d.kind,
                created=d.created,
                extent=d.extent,
                heights=d.heights,
                tiles=d.tiles,
                bytes=d.bytes_out,
                srs=d.srs,
                warnings=len(d.warnings),
                tileset=str(request.url_for("threed_tileset", name=d.name)),
            )
        )
    return DatasetList(datasets=out)


# ------------------------------------------------------------------ registrar builds (jobs)
REGISTRAR = Depends(require(Role.REGISTRAR))


class BuildRequest(BaseModel):
    source: str = Field(min_length=1, max_length=300,
                        description="folder or file under <data dir>/3d-sources/")
    name: str = Field(min_length=1, max_length=64)
    srs: str | None = Field(default=None, max_length=4000)
    origin: str | None = Field(default=None, max_length=100)
    replace: bool = False
    compress: Literal["none", "draco"] = "none"
    texture_quality: int | None = Field(default=None, ge=1, le=95)
    height_datum: Literal["auto", "ellipsoidal", "egm96"] = "auto"


def _sources_root(request: Request) -> Path:
    return (_data_dir(request) / "3d-sources").resolve()


def _source_path(request: Request, source: str) -> Path:
    """Only what the operator placed under ``3d-sources`` may be built from the API."""
    root = _sources_root(request)
    target = (root / source).resolve()
    if not target.is_relative_to(root) or target == root or not target.exists():
        raise InvalidInput("SOURCE_NOT_FOUND",
                           "数据源不存在（须位于数据目录的 3d-sources 下） / no such source under "
                           "<data dir>/3d-sources")
    return target


@router.post("/api/v1/3d/builds", status_code=202,
             summary="构建三维数据集 / build a 3D dataset (registrar; job with progress)")
def start_build(request: Request, body: BuildRequest,
                who: Principal = REGISTRAR) -> dict[str, Any]:
    state = app_state(request)
    source = _source_path(request, body.source)
    with state.sync_pool.connection() as conn, conn.transaction():
        job_id = create_job(conn, "3d_build", who.actor, {**body.model_dump(),
                                                          "source": str(source)})
        record_sync(request, who, "3d.build", body.name, 1, conn=conn)
    return {"job_id": str(job_id), "links": {
        "job": str(request.base_url).rstrip("/") + f"/api/v1/3d/jobs/{job_id}"}}


@router.get("/api/v1/3d/jobs/{job_id}", summary="三维构建进度 / 3D build progress")
def build_job(request: Request, job_id: str,
              who: Principal = REGISTRAR) -> dict[str, Any]:
    try:
        jid = uuid.UUID(job_id)
    except ValueError:
        raise NotFound("JOB_NOT_FOUND", "无此任务 / no such job") from None
    with app_state(request).sync_pool.connection() as conn:
        state = get_job(conn, jid)
    if state.kind != "3d_build":
        raise NotFound("JOB_NOT_FOUND", "无此任务 / no such job")
    return state.as_dict()
