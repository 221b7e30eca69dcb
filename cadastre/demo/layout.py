"""Spatial layout of the demo district: blocks, parcels, buildings, floors, units.

A grid of city blocks separated by roads (roads are gaps between parcels, as in a real cadastre).
Each block is a residential compound (小区, several high-rise towers), a commercial block (2–4
parcels with office towers), a school, a park, or a row of small lots (shops and houses). All
coordinates are metres in a CGCS2000 3° Gauss-Krüger zone, rounded to millimetres like 界址点
coordinates; neighbouring parcels share exactly the same vertices (T-junctions are noded).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from shapely.geometry import Polygon, box

BLOCK_W, BLOCK_H = 180.0, 140.0          # block interior (m)
ROAD, ARTERIAL = 20.0, 40.0               # road widths; every 5th road is an arterial
EW_ROADS = ("文一路", "文二路", "文三路", "学院路", "天目山路", "西溪路", "古墩路", "余杭塘路",
            "紫荆花路", "丰潭路", "萍水街", "申花路", "莫干山路", "教工路", "保俶路", "曙光路")
NS_ROADS = ("古翠路", "教工路", "竞舟路", "丰潭路", "紫金港路", "益乐路", "花坞路", "留下街",
            "五常大道", "蒋村街", "双龙街", "西园路", "振华路", "华星路", "万塘路", "黄姑山路")
COMPOUND_A = ("翠苑", "文鼎", "金都", "嘉绿", "西溪", "和家", "紫金", "丹桂", "星洲", "蓝庭",
              "桂花", "春江", "融创", "湖畔", "云栖", "锦绣", "璟园", "枫华", "梧桐", "荷塘",
              "青枫", "望月")
KINDS = ("residential", "commercial", "school", "park", "lot")
WEIGHTS = (0.34, 0.14, 0.05, 0.05, 0.42)   # of block kinds (the standard demo: ~16 units a parcel)
COMPOUND_B = ("花园", "苑", "府", "家园", "公寓", "名邸", "小区", "雅苑", "新村", "里")


def mm(v: float) -> float:
    """Round to the millimetre, like survey coordinates (XZBZ/YZBZ numeric(15,3))."""
    return round(v, 3)


@dataclass
class UnitPlan:
    house_no: int          # 户号
    floor_no: int
    floor_count: int
    room_no: str
    use: str               # FWYT
    bounds: tuple[float, float, float, float]   # plan rectangle, local metres (mm)
    building_area: float
    inner_area: float
    shared_area: float
    base_elevation: float
    height: float


@dataclass
class FloorPlan:
    floor_no: int
    base_elevation: float
    storey_height: float
    polygon: Polygon


@dataclass
class BuildingPlan:
    building_no: int       # 幢号
    name: str
    kind: str              # tower | office | school | house
    footprint: Polygon
    floors_above: int
    floors_below: int
    storey_height: float
    ground_elevation: float
    structure: int         # FWJG
    planned_use: str       # GHYT (FWYT code)
    completion_year: int
    floors: list[FloorPlan] = field(default_factory=list)
    units: list[UnitPlan] = field(default_factory=list)

    @property
    def height(self) -> float:
        return round(self.floors_above * self.storey_height, 2)


@dataclass
class ParcelPlan:
    block_id: int
    kind: str              # residential | commercial | school | park | lot
    district: int          # 地籍区
    subdistrict: int       # 地籍子区
    polygon: Polygon
    seat: str
    compound_name: str | None
    land_use: str          # GB/T 21010
    neighbours: dict[str, str]
    buildings: list[BuildingPlan] = field(default_factory=list)
    sequence: int = 0      # assigned by the caller


@dataclass
class RetiredParcel:
    """A parcel that existed before a split; its children are current parcels."""

    polygon: Polygon
    district: int
    subdistrict: int
    seat: str
    land_use: str
    children: list[int]    # indexes into the parcels of the same block
    sequence: int = 0


def terrain(e: float, n: float) -> float:
    """Gently rolling ground elevation (m) for the demo (a valley city like Hangzhou)."""
    return 6.0 + 2.5 * math.sin(e / 900.0) + 1.8 * math.cos(n / 1300.0)


def _ring_with_nodes(x0: float, y0: float, x1: float, y1: float,
                     nodes_top: list[float], nodes_bottom: list[float]) -> Polygon:
    """Counter-clockwise rectangle with extra vertices on its top/bottom edges (noding)."""
    bottom = [(x, y0) for x in sorted(nodes_bottom) if x0 < x < x1]
    top = [(x, y1) for x in sorted(nodes_top, reverse=True) if x0 < x < x1]
    pts = [(x0, y0), *bottom, (x1, y0), (x1, y1), *top, (x0, y1)]
    return Polygon([(mm(x), mm(y)) for x, y in pts])


class DistrictBuilder:
    """Generates blocks until the parcel target is reached."""

    def __init__(self, target_parcels: int, seed: int) -> None:
        self.target = target_parcels
        self.rng = random.Random(seed)
        blocks_needed = max(4, math.ceil(target_parcels / 9.0 * 1.15))
        self.grid = max(2, math.ceil(math.sqrt(blocks_needed)))
        # 地籍区 of d×d blocks; each block is one 地籍子区 (both ≤ 999)
        self.district_side = max(6, math.ceil(self.grid / 31))
        self.building_count = 0

    # ------------------------------------------------------------------ grid
    def _block_origin(self, col: int, row: int) -> tuple[float, float]:
        x = col * BLOCK_W + self._roads_before(col)
        y = row * BLOCK_H + self._roads_before(row)
        return x, y

    @staticmethod
    def _roads_before(i: int) -> float:
        arterials = (i + 4) // 5  # roads 0,5,10,... before blocks are arterials
        return (i + 1 - arterials) * ROAD + arterials * ARTERIAL

    def blocks(self) -> Iterator[tuple[int, int, int]]:
        i = 0
        for row in range(self.grid * 4):
            for col in range(self.grid):
                yield i, col, row
                i += 1

    # ----------------------------------------------------------------- build
    def iter_blocks(self) -> Iterator[tuple[list[ParcelPlan], list[RetiredParcel]]]:
        """Block by block (each block is one 地籍子区), until the parcel target is reached.

        Retired parents' ``children`` index into the parcels of the same block.
        """
        produced = 0
        compound_n = 0
        for block_id, col, row in self.blocks():
            if produced >= self.target:
                break
            kind = self.rng.choices(KINDS, weights=WEIGHTS)[0]
            if kind == "residential":
                compound_n += 1
            parcels, retired = self.block(block_id, col, row, kind, compound_n)
            produced += len(parcels)
            yield parcels, retired

    def block_context(self, block_id: int, col: int, row: int) -> tuple:
        """(block id, 地籍区, 地籍子区, x0, y0, the four roads' names) of one block."""
        x0, y0 = self._block_origin(col, row)
        per_row = math.ceil(self.grid / self.district_side)
        district = (row // self.district_side) * per_row + col // self.district_side + 1
        subdistrict = (row % self.district_side) * self.district_side + (
            col % self.district_side
        ) + 1
        roads = {"north": EW_ROADS[(row + 1) % len(EW_ROADS)],
                 "south": EW_ROADS[row % len(EW_ROADS)],
                 "west": NS_ROADS[col % len(NS_ROADS)],
                 "east": NS_ROADS[(col + 1) % len(NS_ROADS)]}
        return (block_id, district, subdistrict, x0, y0, roads)

    def block(self, block_id: int, col: int, row: int, kind: str, compound_n: int,
              counts: tuple[int, ...] | None = None, split: bool = True
              ) -> tuple[list[ParcelPlan], list[RetiredParcel]]:
        """One block's parcels (and retired parents) drawn from ``self.rng``. ``counts`` gives
        the parcel counts drawn beforehand (commercial: (k,), lots: (south, north)); without it
        they are drawn here, in the sequential demo's order. ``split=False``: no retired parent."""
        ctx = self.block_context(block_id, col, row)
        parcels: list[ParcelPlan] = []
        retired: list[RetiredParcel] = []
        if kind == "residential":
            parcels.append(self._residential(ctx, compound_n))
        elif kind == "commercial":
            parcels.extend(self._commercial(ctx, counts[0] if counts else None))
        elif kind == "school":
            parcels.append(self._single(ctx, "school", "08H2", "第{n}中学", "41"))
        elif kind == "park":
            parcels.append(self._single(ctx, "park", "0810", "{road}公园", None))
        else:
            self._lots(ctx, parcels, retired, counts, split)
        return parcels, retired

    # ---------------------------------------------------------------- blocks
    def _residential(self, ctx: tuple, n: int) -> ParcelPlan:
        block_id, district, subdistrict, x0, y0, roads = ctx
        rng = self.rng
        name = (COMPOUND_A[n % len(COMPOUND_A)] + COMPOUND_B[(n // len(COMPOUND_A)) % len(
            COMPOUND_B)] + ("" if n <= len(COMPOUND_A) * len(COMPOUND_B) else f"{n}期"))
        poly = box(x0, y0, x0 + BLOCK_W, y0 + BLOCK_H)
        parcel = ParcelPlan(block_id, "residential", district, subdistrict, _mm_poly(poly),
                            f"{roads['south']}{rng.randrange(1, 300)}号{name}", name, "0701",
                            dict(roads))
        units_per_floor = rng.choice((2, 2, 3, 4))
        length, depth = units_per_floor * 10.0, 12.0
        completion = rng.randrange(2003, 2026)
        slots = []
        for ry in range(3):
            for cx in range(3):
                bx = x0 + 12.0 + cx * (length + 16.0)
                by = y0 + 14.0 + ry * (depth + 30.0)
                if bx + length <= x0 + BLOCK_W - 10 and by + depth <= y0 + BLOCK_H - 10:
                    slots.append((bx, by))
        count = rng.randint(min(4, len(slots)), min(8, len(slots)))
        floors_choice = (11, 11, 18, 18, 24, 26, 30, 32, 33)
        for b, (bx, by) in enumerate(slots[:count], start=1):
            fp = _mm_poly(box(bx, by, bx + length, by + depth))
            floors = rng.choice(floors_choice)
            bld = self._building(b, f"{name}{b}幢", "tower", fp, floors, rng.choice((1, 2)),
                                 3.0, 3 if floors > 7 else 4, "11", completion)
            self._tower_units(bld, units_per_floor, "11", coef=rng.uniform(0.12, 0.25))
            parcel.buildings.append(bld)
        return parcel

    def _commercial(self, ctx: tuple, k: int | None = None) -> list[ParcelPlan]:
        block_id, district, subdistrict, x0, y0, roads = ctx
        rng = self.rng
        k = rng.randint(2, 4) if k is None else k
        cuts = _cuts(rng, x0, x0 + BLOCK_W, k, min_width=30.0)
        out = []
        for i in range(k):
            a, b = cuts[i], cuts[i + 1]
            nb = dict(roads)
            if i > 0:
                nb["west"] = "相邻宗地"
            if i < k - 1:
                nb["east"] = "相邻宗地"
            name = f"{roads['south']}{rng.choice(('国际', '商务', '科技', '金融'))}中心{i + 1}号楼"
            p = ParcelPlan(block_id, "commercial", district, subdistrict,
                           _mm_poly(box(a, y0, b, y0 + BLOCK_H)),
                           f"{roads['south']}{rng.randrange(300, 900)}号", name, "0505", nb)
            w = min(b - a - 12.0, 48.0)
            fp = _mm_poly(box(a + 6.0, y0 + 20.0, a + 6.0 + w, y0 + 20.0 + 24.0))
            bld = self._building(1, name, "office", fp, rng.randint(5, 25), 1, 3.6, 3, "60",
                                 rng.randrange(2000, 2025))
            self._tower_units(bld, rng.choice((2, 3, 4)), "60", coef=rng.uniform(0.2, 0.35),
                              ground_use="31")
            p.buildings.append(bld)
            out.append(p)
        return out

    def _single(self, ctx: tuple, kind: str, land_use: str, name_tpl: str,
                building_use: str | None) -> ParcelPlan:
        block_id, district, subdistrict, x0, y0, roads = ctx
        rng = self.rng
        name = name_tpl.format(n=block_id % 97 + 1, road=roads["west"].rstrip("路街"))
        p = ParcelPlan(block_id, kind, district, subdistrict,
                       _mm_poly(box(x0, y0, x0 + BLOCK_W, y0 + BLOCK_H)),
                       f"{roads['west']}{rng.randrange(1, 200)}号", name, land_use, dict(roads))
        if building_use:
            for b in range(1, rng.randint(2, 3) + 1):
                fp = _mm_poly(box(x0 + 20 + (b - 1) * 55, y0 + 30, x0 + 65 + (b - 1) * 55,
                                  y0 + 48))
                bld = self._building(b, f"{name}{b}号教学楼", "school", fp, rng.randint(3, 5), 0,
                                     3.9, 3, building_use, rng.randrange(1995, 2020))
                self._whole_building_unit(bld, building_use)
                p.buildings.append(bld)
        return p

    def _lots(self, ctx: tuple, parcels: list[ParcelPlan], retired: list[RetiredParcel],
              counts: tuple[int, ...] | None = None, split: bool = True) -> None:
        block_id, district, subdistrict, x0, y0, roads = ctx
        rng = self.rng
        mid = y0 + BLOCK_H / 2
        rows = []
        for i, side in enumerate(("south", "north")):
            k = rng.randint(8, 13) if counts is None else counts[i]
            rows.append((side, _cuts(rng, x0, x0 + BLOCK_W, k, min_width=9.0)))
        # a surveyor would make boundaries that meet within half a metre share one point
        south = rows[0][1]
        rows[1] = ("north", [next((c for c in south if abs(c - n) < 0.5), n) for n in rows[1][1]])
        for r, (side, cuts) in enumerate(rows):
            other = rows[1 - r][1][1:-1]
            ya, yb = (y0, mid) if side == "south" else (mid, y0 + BLOCK_H)
            row_start = len(parcels)
            for i in range(len(cuts) - 1):
                a, b = cuts[i], cuts[i + 1]
                poly = (_ring_with_nodes(a, ya, b, yb, other, []) if side == "south"
                        else _ring_with_nodes(a, ya, b, yb, [], other))
                nb = {side: roads[side],
                      ("north" if side == "south" else "south"): "相邻宗地",
                      "west": roads["west"] if i == 0 else "相邻宗地",
                      "east": roads["east"] if i == len(cuts) - 2 else "相邻宗地"}
                road = roads[side]
                p = ParcelPlan(block_id, "lot", district, subdistrict, poly,
                               f"{road}{rng.randrange(1, 600)}号", None,
                               rng.choice(("0701", "0501", "0501")), nb)
                floors = rng.randint(1, 3)
                fp = _mm_poly(box(a + 1.0, ya + 3.0 if side == "south" else ya + 6.0,
                                  b - 1.0, (ya + 3.0 if side == "south" else ya + 6.0)
                                  + min(40.0, (yb - ya) - 10.0)))
                use = "31" if p.land_use == "0501" else "10"
                bld = self._building(1, f"{road}{p.seat[len(road):]}", "house", fp, floors, 0,
                                     3.3, rng.choice((4, 5, 3)), use, rng.randrange(1985, 2024))
                self._whole_building_unit(bld, use)
                p.buildings.append(bld)
                parcels.append(p)
            # roughly one block in six had a split: two neighbours came from one older parcel
            if split and len(cuts) > 3 and rng.random() < 0.18:
                j = row_start + rng.randrange(0, len(cuts) - 2)
                left, right = parcels[j], parcels[j + 1]
                parent = left.polygon.union(right.polygon)
                parent = _mm_poly(box(*parent.bounds))
                retired.append(RetiredParcel(parent, district, subdistrict, left.seat,
                                             left.land_use, [j, j + 1]))

    # ------------------------------------------------------------- buildings
    def _building(self, no: int, name: str, kind: str, fp: Polygon, floors_above: int,
                  floors_below: int, storey: float, structure: int, use: str,
                  completion: int) -> BuildingPlan:
        self.building_count += 1
        c = fp.centroid
        ground = round(terrain(c.x, c.y), 2)
        bld = BuildingPlan(no, name, kind, fp, floors_above, floors_below, storey, ground,
                           structure, use, completion)
        for f in range(-floors_below, floors_above + 1):
            if f == 0:
                continue
            base = ground + (f - 1) * storey if f > 0 else ground + f * storey
            bld.floors.append(FloorPlan(f, round(base, 2), storey, fp))
        return bld

    def _tower_units(self, bld: BuildingPlan, per_floor: int, use: str, coef: float,
                     ground_use: str | None = None) -> None:
        x0, y0, x1, y1 = bld.footprint.bounds
        step = (x1 - x0) / per_floor
        house_no = 0
        for fl in bld.floors:
            if fl.floor_no < 1:
                continue
            for i in range(per_floor):
                house_no += 1
                xa = mm(x0 + i * step)
                xb = mm(x0 + (i + 1) * step) if i < per_floor - 1 else x1
                area = round((xb - xa) * (y1 - y0), 2)
                inner = round(area / (1.0 + coef), 2)
                bld.units.append(UnitPlan(
                    house_no, fl.floor_no, 1, f"{fl.floor_no}{i + 1:02d}",
                    ground_use if (ground_use and fl.floor_no == 1) else use, (xa, y0, xb, y1),
                    area, inner, round(area - inner, 2), fl.base_elevation, fl.storey_height))

    def _whole_building_unit(self, bld: BuildingPlan, use: str) -> None:
        first = next(f for f in bld.floors if f.floor_no == 1)
        area = round(bld.footprint.area * bld.floors_above, 2)
        bld.units.append(UnitPlan(1, 1, bld.floors_above, "全幢", use, bld.footprint.bounds,
                                  area, area, 0.0, first.base_elevation, bld.height))


def _mm_poly(poly: Polygon) -> Polygon:
    return Polygon([(mm(x), mm(y)) for x, y in poly.exterior.coords])


def _cuts(rng: random.Random, a: float, b: float, k: int, min_width: float) -> list[float]:
    """k pieces between a and b, each at least min_width wide, cut positions at mm."""
    k = max(1, min(k, int((b - a) // min_width)))
    weights = [rng.uniform(1.0, 2.0) for _ in range(k)]
    spare = (b - a) - k * min_width
    total = sum(weights)
    out = [a]
    acc = a
    for w in weights[:-1]:
        acc += min_width + spare * w / total
        out.append(mm(acc))
    out.append(b)
    return out
