"""The catalogue of published vector layers: which table, which fields, which zooms, and which
code column scopes a layer's features to a county (``Layer.scope``). Tiles, OGC API Features and
the MapLibre style read these facts from here and nowhere else.

Field lists are filtered through the privacy policy (``cadastre.access.privacy``) for the caller's
role before any SQL is built, so a field the role may not see is never selected from the database.
Identifiers in SQL come only from this catalogue, never from the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cadastre.access.privacy import Role, visible_fields
from cadastre.codes import county_sql
from cadastre.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class ScopeSource:
    """A feature table a layer shows, and the code column whose county (``county_sql``) decides
    whether a county-scoped caller may see a feature."""

    table: str
    code_column: str

    def county(self, alias: str = "t") -> str:
        """SQL: the county of a row of ``table`` aliased ``alias``."""
        return county_sql(f"{alias}.{self.code_column}")


@dataclass(frozen=True)
class LayerField:
    name: str
    sql: str            # expression over the layer's FROM clause
    type: str           # TileJSON/OGC type: String | Number | Boolean
    description: str = ""


@dataclass(frozen=True)
class Layer:
    name: str
    entity: str                        # privacy-policy entity and invalidation entity
    title: str
    from_sql: str                      # FROM clause; the feature table is aliased t
    fields: tuple[LayerField, ...]
    minzoom: int
    maxzoom: int = 20                  # deepest zoom rendered; clients overzoom beyond
    geometry: str = "polygon"          # polygon | point
    geom_sql: str = "t.geom_3857"
    feature_limit: int = 20_000
    min_pixels: float = 0.0            # drop polygons smaller than this many square pixels
    order_sql: str = ""
    floor_filter: bool = False         # needs ?floor=N
    extra_where: str = ""
    sources: tuple[str, ...] = field(default_factory=tuple)  # entities whose changes touch it
    # the feature tables shown and their county code columns; the first is the table aliased t
    # in ``from_sql`` (except for derived layers such as labels)
    scope: tuple[ScopeSource, ...] = field(default_factory=tuple)

    @property
    def county_sql(self) -> str:
        """SQL: the county of the feature aliased t (layers over one feature table)."""
        return self.scope[0].county("t")

    def visible(self, role: Role) -> tuple[LayerField, ...]:
        allowed = set(visible_fields(self.entity, role, [f.name for f in self.fields]))
        return tuple(f for f in self.fields if f.name in allowed or f.name in _NON_PRIVATE)


# derived display fields that carry no entity data of their own
_NON_PRIVATE = {"label", "kind", "rank"}

S, N, B = "String", "Number", "Boolean"

PARCELS = Layer(
    name="parcels", entity="parcel", title="宗地 / parcels",
    from_sql="cad.parcel t", minzoom=12, min_pixels=2.0,
    fields=(
        LayerField("parcel_code", "t.parcel_code", S, "宗地代码"),
        LayerField("seat", "t.seat", S, "坐落"),
        LayerField("compound_name", "t.compound_name", S, "小区/项目"),
        LayerField("land_use", "t.land_use", S, "用途 GB/T 21010"),
        LayerField("right_type", "t.right_type::int", N, "权利类型 QLLX"),
        LayerField("registered_area", "t.registered_area::float8", N, "宗地面积 m²"),
        LayerField("computed_area", "round(ST_Area(t.geom)::numeric, 2)::float8", N,
                   "计算面积 m²"),
        LayerField("area_difference",
                   "round((t.registered_area - ST_Area(t.geom)::numeric), 2)::float8", N,
                   "面积差 m²"),
    ),
    sources=("parcel",), scope=(ScopeSource("cad.parcel", "parcel_code"),),
)

BUILDINGS = Layer(
    name="buildings", entity="building", title="自然幢 / buildings",
    from_sql="cad.building t", minzoom=14, min_pixels=1.0,
    fields=(
        LayerField("building_code", "t.building_code", S, "自然幢号"),
        LayerField("name", "t.name", S, "建筑物名称"),
        LayerField("floors_above", "t.floors_above::int", N, "地上层数"),
        LayerField("floors_below", "t.floors_below::int", N, "地下层数"),
        LayerField("height", "t.height::float8", N, "建筑物高度 m"),
        LayerField("structure", "t.structure::int", N, "房屋结构 FWJG"),
        LayerField("planned_use", "t.planned_use", S, "规划用途"),
        LayerField("completion_year", "extract(year FROM t.completion_date)::int", N,
                   "竣工年份"),
    ),
    sources=("building",), scope=(ScopeSource("cad.building", "building_code"),),
)

UNITS = Layer(
    name="units", entity="unit", title="户（分层）/ units by floor",
    from_sql="cad.unit t LEFT JOIN cad.unit_status s ON s.unit_code = t.unit_code",
    minzoom=16, floor_filter=True,
    extra_where="t.floor_no <= %(floor)s AND t.floor_no + t.floor_count > %(floor)s",
    fields=(
        LayerField("unit_code", "t.unit_code", S, "不动产单元号"),
        LayerField("floor_no", "t.floor_no::int", N, "层号"),
        LayerField("room_no", "t.room_no", S, "室号"),
        LayerField("use", "t.use", S, "房屋用途"),
        LayerField("building_area", "t.building_area::float8", N, "建筑面积 m²"),
        LayerField("inner_area", "t.inner_area::float8", N, "套内面积 m²"),
        LayerField("registration_status", "coalesce(s.registration_status, 'unregistered')",
                   S, "登记状态"),
        LayerField("base_elevation", "t.base_elevation::float8", N, "底标高 m"),
        LayerField("height", "t.height::float8", N, "高度 m"),
        LayerField("mortgaged", "coalesce(s.mortgaged, false)", B, "抵押"),
        LayerField("seized", "coalesce(s.seized, false)", B, "查封"),
        LayerField("pre_noticed", "coalesce(s.pre_noticed, false)", B, "预告"),
        LayerField("objected", "coalesce(s.objected, false)", B, "异议"),
    ),
    sources=("unit",), scope=(ScopeSource("cad.unit", "unit_code"),),
)

BOUNDARY_POINTS = Layer(
    name="boundary_points", entity="boundary_point", title="界址点 / boundary points",
    from_sql="cad.boundary_point t", minzoom=17, geometry="point",
    fields=(
        LayerField("point_no", "t.point_no", S, "界址点号"),
        LayerField("parcel_code", "t.parcel_code", S, "宗地代码"),
        LayerField("marker_type", "t.marker_type::int", N, "界标类型"),
    ),
    sources=("boundary_point",), scope=(ScopeSource("cad.boundary_point", "parcel_code"),),
)

# Labels: compound names from z13, building names from z16, parcel seats from z17.
LABELS = Layer(
    name="labels", entity="parcel", title="注记 / labels",
    from_sql="""(
        SELECT ST_PointOnSurface(p.geom_3857) AS geom_3857, p.compound_name AS label,
               'compound' AS kind, 1 AS rank, p.valid_to
        FROM cad.parcel p, b
        WHERE p.valid_to IS NULL AND p.geom_3857 && b.qenv AND p.compound_name IS NOT NULL
          AND %(z)s >= 13
        UNION ALL
        SELECT ST_PointOnSurface(bl.geom_3857), bl.name, 'building', 2, bl.valid_to
        FROM cad.building bl, b
        WHERE bl.valid_to IS NULL AND bl.geom_3857 && b.qenv AND bl.name IS NOT NULL
          AND %(z)s >= 16
        UNION ALL
        SELECT ST_PointOnSurface(p.geom_3857), p.seat, 'parcel', 3, p.valid_to
        FROM cad.parcel p, b
        WHERE p.valid_to IS NULL AND p.geom_3857 && b.qenv AND p.compound_name IS NULL
          AND p.seat IS NOT NULL AND %(z)s >= 17
    ) t""",
    minzoom=13, geometry="point", order_sql="t.rank",
    fields=(
        LayerField("label", "t.label", S, "注记文字"),
        LayerField("kind", "t.kind", S, "compound | building | parcel"),
        LayerField("rank", "t.rank", N, "优先级"),
    ),
    sources=("parcel", "building"),
    scope=(ScopeSource("cad.parcel", "parcel_code"), ScopeSource("cad.building", "building_code")),
)

LAYERS: dict[str, Layer] = {
    layer.name: layer for layer in (PARCELS, BUILDINGS, UNITS, BOUNDARY_POINTS, LABELS)
}


class UnknownLayer(NotFound):
    code = "LAYER_NOT_FOUND"


def parse_layers(spec: str) -> tuple[Layer, ...]:
    """``parcels,buildings`` → layers, in the given order, each once."""
    names = [n for n in spec.split(",") if n]
    if not names:
        raise InvalidInput("LAYER_EMPTY", "未指定图层 / no layer given")
    out: list[Layer] = []
    for n in names:
        layer = LAYERS.get(n)
        if layer is None:
            raise UnknownLayer(message=f"未知图层 {n[:40]} / unknown layer; known: "
                               + ", ".join(LAYERS))
        if layer not in out:
            out.append(layer)
    return tuple(out)


def layers_for_entity(entity: str) -> set[str]:
    return {name for name, layer in LAYERS.items() if entity in layer.sources}
