"""``read_survey``: detect the format of an uploaded survey file and read it.

Detection is by content (magic bytes, text sniffing); the extension only produces a warning when
it disagrees.  Zip archives are extracted safely into a temporary folder that is always removed.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cadastre.ingest.checks import derive_floors, finalize
from cadastre.ingest.csvpoints import read_point_csv
from cadastre.ingest.dxf import read_dxf
from cadastre.ingest.formats import (
    check_fgb_header,
    check_geojson_complete,
    check_gpkg,
    shapefile_layers,
    truncated,
)
from cadastre.ingest.ifc import read_ifc
from cadastre.ingest.model import IssueLog, ReaderOptions, SurveyDataset, SurveyFormatError
from cadastre.ingest.ogr import FeatureSink, list_ogr_layers, read_ogr_layers
from cadastre.ingest.sniff import sniff
from cadastre.ingest.txt import read_coord_txt
from cadastre.ingest.zipsafe import safe_extract

__all__ = ["read_survey"]

_HEAD_BYTES = 64 * 1024
_SUFFIXES = {"gpkg": ".gpkg", "geojson": ".geojson", "flatgeobuf": ".fgb"}
_SHP_SIDECARS = frozenset(
    {
        ".shp",
        ".shx",
        ".dbf",
        ".prj",
        ".cpg",
        ".sbn",
        ".sbx",
        ".qix",
        ".fix",
        ".xml",
        ".qmd",
        ".atx",
        ".ain",
        ".aih",
    }
)
_FORMAT_NAMES = {
    "cn_coord_txt": "国土资源部坐标TXT / coordinate TXT",
    "csv_points": "CSV",
    "zip": "zip",
    "shp": "Shapefile",
    "gpkg": "GeoPackage",
    "geojson": "GeoJSON",
    "flatgeobuf": "FlatGeobuf",
    "dxf": "DXF",
    "ifc": "IFC",
}


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(_HEAD_BYTES)


def _stem(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def _geojson_utf8(path: Path, tmp: Path, log: IssueLog) -> Path:
    """GDAL reads GeoJSON as UTF-8: re-encode a GBK file into a temporary copy."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        return path
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise SurveyFormatError(
            "ENCODING_UNKNOWN",
            "GeoJSON的文本编码无法识别（应为UTF-8）",
            "unknown text encoding of the GeoJSON (expected UTF-8)",
        ) from exc
    log.warning(
        "ENCODING_NOT_UTF8",
        "GeoJSON不是UTF-8编码，已按GBK读取",
        "the GeoJSON is not UTF-8; it was read as GBK",
    )
    copy = Path(tempfile.mkdtemp(dir=tmp)) / "utf8.geojson"
    copy.write_text(text, encoding="utf-8")
    return copy


def _with_suffix(path: Path, suffix: str, tmp: Path) -> Path:
    """GDAL warns about (and may mis-detect) files without their usual extension: link them."""
    if path.suffix.lower() == suffix:
        return path
    link = Path(tempfile.mkdtemp(dir=tmp)) / f"upload{suffix}"
    try:
        link.symlink_to(path.resolve())
    except OSError:
        shutil.copyfile(path, link)
    return link


def _read_ogr_file(path: Path, fmt: str, name: str, srid: int | None, tmp: Path,
                   opts: ReaderOptions, sink: FeatureSink | None = None) -> SurveyDataset:
    log = IssueLog()
    if fmt == "gpkg":
        check_gpkg(path)
    elif fmt == "geojson":
        check_geojson_complete(path)
        path = _geojson_utf8(path, tmp, log)
    elif fmt == "flatgeobuf":
        check_fgb_header(path)
    path = _with_suffix(path, _SUFFIXES[fmt], tmp)
    layers = list_ogr_layers(path, fmt, _stem(name))
    try:
        dataset = read_ogr_layers(layers, fmt, srid=srid, sink=sink, options=opts)
    except SurveyFormatError as exc:
        if fmt == "flatgeobuf" and exc.code == "FILE_CORRUPT":
            raise truncated("FlatGeobuf") from exc  # features end early: an interrupted upload
        raise
    dataset.issues[:0] = log.issues
    return dataset


def _bare_shapefile(path: Path, name: str, srid: int | None, opts: ReaderOptions,
                    sink: FeatureSink | None = None) -> SurveyDataset:
    siblings = [
        (p.name, p)
        for p in path.parent.iterdir()
        if p.stem == path.stem and p.suffix.lower() in _SHP_SIDECARS
    ]
    if path.name != name:  # an upload saved under another name has no sidecar files
        siblings = [(name, path)]
    layers = shapefile_layers(siblings)
    return read_ogr_layers(layers, "shapefile", srid=srid, sink=sink, options=opts)


def _merge(parts: list[SurveyDataset], fmt: str, members: list[str]) -> SurveyDataset:
    """One dataset from the files of an archive; they must share one source CRS."""
    sources = {p.metadata.get("source_srid", p.srid) for p in parts} | {p.srid for p in parts}
    if len({p.srid for p in parts}) > 1 or len(sources - {None}) > 1:
        detail = ", ".join(f"EPSG:{s}" for s in sorted(s for s in sources if s is not None))
        raise SurveyFormatError(
            "CRS_MIXED",
            f"压缩包中各文件的坐标系不一致：{detail}",
            f"the files in the archive use different CRSs: {detail}",
        )
    merged = SurveyDataset(fmt, parts[0].srid, metadata={"members": members})
    for part in parts:
        offset = len(merged.features)
        for f in part.features:  # boundary points refer to parcels by index when uncoded
            ref = f.properties.get("parcel_ref")
            if isinstance(ref, int) and not isinstance(ref, bool):
                f.properties["parcel_ref"] = ref + offset
            if isinstance(f.properties.get("parcel_refs"), list):
                f.properties["parcel_refs"] = [
                    r + offset if isinstance(r, int) else r for r in f.properties["parcel_refs"]
                ]
        merged.features.extend(part.features)
        for issue in part.issues:
            if issue.feature is not None:
                issue.feature += offset
            merged.issues.append(issue)
        merged.metadata.setdefault("parts", []).append({"format": part.format, **part.metadata})
        if part.metadata.get("field_reports"):
            merged.metadata.setdefault("field_reports", []).extend(
                part.metadata["field_reports"])
    return merged


def _read_zip(path: Path, srid: int | None, opts: ReaderOptions, tmp: Path) -> SurveyDataset:
    files = safe_extract(path, tmp / "zip", opts)
    shp = [(n, p) for n, p in files if Path(n).suffix.lower() in _SHP_SIDECARS]
    shp_exts = {Path(n).suffix.lower() for n, _ in shp}
    if shp_exts and not shp_exts & {".shp", ".shx", ".dbf"}:
        shp = []  # only .xml/.prj: not a Shapefile
    parts: list[SurveyDataset] = []
    ignored: list[str] = []
    unreadable: list[SurveyFormatError] = []
    if shp:
        parts.append(read_ogr_layers(shapefile_layers(shp), "shapefile", srid=srid,
                                     options=opts))
    for name, member in files:
        if shp and Path(name).suffix.lower() in _SHP_SIDECARS:
            continue
        try:
            fmt = sniff(_head(member), name).format
        except SurveyFormatError as exc:
            ignored.append(name)
            if exc.code not in ("FORMAT_UNKNOWN", "FORMAT_UNSUPPORTED", "FORMAT_MISMATCH"):
                unreadable.append(exc)  # e.g. a TXT in an unknown encoding
            continue
        parts.append(_read_one(member, fmt, name, srid, opts, tmp, in_zip=True))
    if not parts and len(unreadable) == 1:
        raise unreadable[0]
    if not parts:
        raise SurveyFormatError(
            "ZIP_NO_SURVEY_FILE",
            "压缩包中没有可识别的测绘成果文件（Shapefile、TXT、DXF等）",
            "the archive holds no recognisable survey file (Shapefile, TXT, DXF, ...)",
            members=[n for n, _ in files],
        )
    fmt = (
        "shapefile" if len(parts) == 1 and shp else (parts[0].format if len(parts) == 1 else "zip")
    )
    dataset = _merge(parts, fmt, [n for n, _ in files])
    dataset.metadata["container"] = "zip"
    if ignored:
        dataset.issues.append(
            IssueLog().warning(
                "ZIP_FILE_IGNORED",
                f"压缩包中的以下文件不是测绘成果，已忽略：{'、'.join(ignored)}",
                f"these archive members are not survey data and were ignored: {', '.join(ignored)}",
            )
        )
    return dataset


def _read_one(
    path: Path,
    fmt: str,
    name: str,
    srid: int | None,
    opts: ReaderOptions,
    tmp: Path,
    in_zip: bool = False,
    sink: FeatureSink | None = None,
) -> SurveyDataset:
    if fmt == "zip":
        if in_zip:
            raise SurveyFormatError(
                "ZIP_NESTED",
                "压缩包中含有另一个压缩包，请解开后上传",
                "the archive contains another archive; unpack it first",
            )
        return _read_zip(path, srid, opts, tmp)
    if fmt == "cn_coord_txt":
        return read_coord_txt(path.read_bytes(), srid=srid)
    if fmt == "csv_points":
        return read_point_csv(path.read_bytes(), srid=srid, label=_stem(name))
    if fmt == "dxf":
        return read_dxf(path, srid=srid, options=opts)
    if fmt == "ifc":
        return read_ifc(path, srid=srid, options=opts)
    if fmt == "shp":
        if in_zip:
            raise SurveyFormatError(
                "SHP_MISSING_PART",
                f"“{name}”是Shapefile的.shp部分，但扩展名不对",
                f"'{name}' is the .shp part of a Shapefile under another "
                "extension; its .shx/.dbf cannot be matched",
            )
        return _bare_shapefile(path, name, srid, opts, sink)
    return _read_ogr_file(path, fmt, name, srid, tmp, opts, sink)


def read_survey(
    path: Path | str,
    *,
    srid: int | None = None,
    filename: str | None = None,
    max_bytes: int | None = None,
    options: ReaderOptions | None = None,
    on_features: FeatureSink | None = None,
    checks: bool = True,
) -> SurveyDataset:
    """Read an uploaded survey file into a :class:`SurveyDataset`.

    ``srid``: the survey's projected CRS (EPSG code).  Files without a CRS (DXF, CSV, TXT
    without 带号) are taken to be in it; files with another CRS are projected to it.
    ``filename``: the name the file was uploaded under (its extension is a hint only).
    ``on_features`` (optional): called with (index of the first, features, srid) as soon as
    features are final, while the rest is still being read -- so that a caller can store them
    meanwhile. Only single-file OGR formats (GeoPackage, GeoJSON, FlatGeobuf, Shapefile) are
    streamed like this, in file order; whatever was not streamed is only in the returned
    dataset. If this function raises, whatever was streamed is void.
    ``checks=False`` leaves out the common feature checks (coordinate ranges, codes, duplicates,
    validity, an empty survey): the caller then runs :func:`finalize` on the dataset itself.
    Raises :class:`SurveyFormatError` when the file cannot be read as a survey at all.
    """
    opts = options or ReaderOptions()
    limit = max_bytes if max_bytes is not None else opts.max_bytes
    path = Path(path)
    name = filename or path.name
    size = path.stat().st_size
    if size > limit:
        raise SurveyFormatError(
            "FILE_TOO_LARGE",
            f"文件大小{size}字节，超过上限{limit}字节",
            f"the file has {size} bytes, more than the limit of {limit}",
            size=size,
            limit=limit,
        )
    sniffed = sniff(_head(path), name)
    with tempfile.TemporaryDirectory(prefix="survey-") as tmp, _bulk_objects():
        dataset = _read_one(path, sniffed.format, name, srid, opts, Path(tmp),
                            sink=on_features)
    if sniffed.extension and not sniffed.extension_matches:
        dataset.issues.insert(
            0,
            IssueLog().warning(
                "EXTENSION_MISMATCH",
                f"文件扩展名为{sniffed.extension}，但内容是{_FORMAT_NAMES[sniffed.format]}，"
                "已按内容读取",
                f"the file is named {sniffed.extension} but holds "
                f"{_FORMAT_NAMES[sniffed.format].split(' / ')[-1]}; it was read by its content",
            ),
        )
    if any(f.kind == "unit" for f in dataset.features) and not dataset.of_kind("floor"):
        derive_floors(dataset.features, dataset.format)
    dataset.metadata.update({"filename": name, "bytes": size, "detected": sniffed.format})
    if not checks:
        return dataset
    with _bulk_objects():
        return finalize(dataset)


@contextmanager
def _bulk_objects() -> Iterator[None]:
    """No cyclic garbage collection while a reader builds its features: a large file makes
    hundreds of thousands of dicts and geometries, none of them in cycles, and every
    collection would walk them all again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
