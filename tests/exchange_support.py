"""A realistic set of exchange messages written from the TD/T 1066 table definitions (not by the
project's writer): parcels with their ZD_K_103 outline, buildings, floors, units, every right
kind, parties; one message per registration business, as the national exchange sends them.
"""

from __future__ import annotations

import io
import random
import zipfile
from dataclasses import dataclass, field

from lxml import etree

from cadastre.demo.people import PeopleFactory, Person

COUNTY = "330106"
OFFICE = "杭州市不动产登记服务中心"


@dataclass
class MessageSet:
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    units: list[str] = field(default_factory=list)
    parcels: list[str] = field(default_factory=list)
    rights: dict[str, int] = field(default_factory=dict)     # table -> rows
    parties: set[str] = field(default_factory=set)           # ID numbers

    def zip_bytes(self) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, body in self.messages:
                zf.writestr(name, body)
        return buf.getvalue()

    def batch_bytes(self, encoding: str = "UTF-8") -> bytes:
        """All messages under one root (a batch file)."""
        root = etree.Element("Messages")
        for _, body in self.messages:
            root.append(etree.fromstring(body))
        return etree.tostring(root, xml_declaration=True, encoding=encoding)


def _msg(n: int, rec_type: str, ywh: str, unit: str, rows: list[tuple[str, dict[str, str]]],
         encoding: str) -> tuple[str, bytes]:
    biz = f"{COUNTY}260601{n:06d}"
    root = etree.Element("Message")
    head = etree.SubElement(root, "Head")
    for k, v in (("BizMsgID", biz), ("ASID", "AS100"), ("AreaCode", COUNTY),
                 ("RecType", rec_type), ("RightType", "4"), ("RegType", rec_type[0] + "00"),
                 ("CreateDate", "2026-06-01T10:00:00"), ("RecFlowID", ywh),
                 ("RegOrgID", OFFICE), ("ParcelID", unit[:19]), ("EstateNum", unit),
                 ("CertCount", "1"), ("ProofCount", "0"), ("DigitalSign", "")):
        etree.SubElement(head, k).text = v
    data = etree.SubElement(root, "Data")
    for table, attrs in rows:
        etree.SubElement(data, table, {k: v for k, v in attrs.items() if v is not None})
    return f"Biz{biz}.xml", etree.tostring(root, xml_declaration=True, encoding=encoding)


def _common(unit: str, ywh: str, djlx: str, qllx: str, cert_attr: str, cert: str | None,
            when: str) -> dict[str, str]:
    return {"YSDM": "6002010200", "BDCDYH": unit, "YWH": ywh, "QLLX": qllx, "DJLX": djlx,
            "DJYY": "首次登记", "QXDM": COUNTY, "DJJG": OFFICE, "DBR": "登簿员甲",
            "DJSJ": when, "QSZT": "1", **({cert_attr: cert} if cert else {})}


def _party(unit: str, cert: str | None, p: Person, seq: int, role: int | None = None
           ) -> tuple[str, dict[str, str]]:
    return ("ZTT_GY_QLR", {"YSDM": "6003000000", "BDCDYH": unit, "BDCQZH": cert,
                           "SXH": str(seq), "QLRMC": p.name, "ZJZL": str(p.id_type),
                           "ZJH": p.id_number, "DH": p.phone, "DZ": p.address,
                           "QLRLX": str(p.party_type), "GJ": "142", "QXDM": COUNTY,
                           "X_JS": str(role) if role else None, "GYFS": "0"})


def make_message_set(parcels: int = 10, floors: int = 6, per_floor: int = 6, seed: int = 7,
                     encoding: str = "UTF-8") -> MessageSet:
    """``parcels`` × one building × ``floors`` × ``per_floor`` units, each unit registered; a
    share of them mortgaged, pre-noticed, seized, objected; easements and a cancellation."""
    rng = random.Random(seed)
    people = PeopleFactory(rng)
    out = MessageSet()
    n = 0
    for i in range(parcels):
        zd = f"{COUNTY}001002GB{i + 1:05d}"
        out.parcels.append(zd)
        x0, y0 = 40_500_000.0 + (i % 10) * 100, 3_350_000.0 + (i // 10) * 100
        ring = [(x0, y0 + 60), (x0 + 60, y0 + 60), (x0 + 60, y0), (x0, y0)]
        zrzh = zd + "F0001"
        spatial: list[tuple[str, dict[str, str]]] = [
            ("KTT_ZDJBXX", {"YSDM": "6001010000", "ZDDM": zd, "BDCDYH": zd + "W00000000",
                            "ZDTZM": "GB", "ZL": f"杭州市西湖区文三路{i + 1}号", "ZDMJ": "3600.00",
                            "MJDW": "1", "YT": "0701", "QLLX": "3", "QLXZ": "102",
                            "ZDSZB": "道路", "ZDSZD": "绿地", "ZDSZN": "河道", "ZDSZX": "小区",
                            "QXDM": COUNTY})]
        for k, (x, y) in enumerate(ring, start=1):
            spatial.append(("ZD_K_103", {"BDCDYH": zd + "W00000000", "XH": str(k), "ZDX": "1",
                                         "XZB": f"{y:.3f}", "YZB": f"{x:.3f}"}))
        spatial.append(("KTT_FW_ZRZ", {
            "YSDM": "6001030110", "BDCDYH": zrzh + "0000", "ZDDM": zd, "ZRZH": zrzh,
            "JZWMC": f"{i + 1}号楼", "ZCS": str(floors), "DSCS": str(floors), "DXCS": "0",
            "JZWGD": f"{floors * 3:.2f}", "FWJG": "2", "GHYT": "10", "JGRQ": "2012-05-01",
            "ZT": "1",
            "X_GEOM": f"POLYGON(({x0 + 10} {y0 + 10},{x0 + 10} {y0 + 50},{x0 + 50} {y0 + 50},"
                      f"{x0 + 50} {y0 + 10},{x0 + 10} {y0 + 10}))"}))
        for f in range(1, floors + 1):
            spatial.append(("KTT_FW_C", {"YSDM": "6001030130", "ZRZH": zrzh, "CH": str(f),
                                         "SJC": str(f), "MYC": str(f), "CG": "3.00",
                                         "CJZMJ": "1600.00"}))
        for f in range(1, floors + 1):
            for u in range(1, per_floor + 1):
                unit = f"{zrzh}{f:02d}{u:02d}"
                out.units.append(unit)
                n += 1
                ywh = f"2015{n:08d}"
                cert = f"浙(2015)杭州市不动产权第{n:07d}号"
                owner = people.person()
                out.parties.add(owner.id_number)
                area = f"{80 + u * 5}.00"
                unit_row = ("KTT_FW_H", {
                    "YSDM": "6001030140", "BDCDYH": unit, "FWBM": unit[19:], "ZRZH": zrzh,
                    "CH": str(f), "SJCS": "1", "SHBW": f"{f}{u:02d}", "ZL":
                    f"杭州市西湖区文三路{i + 1}号{f}{u:02d}室", "MJDW": "1", "FWYT1": "10",
                    "FWXZ": "0", "SCJZMJ": area, "SCTNJZMJ": f"{80 + u * 5 - 10}.00",
                    "SCFTJZMJ": "10.00", "ZT": "1", "QXDM": COUNTY})
                rows = (spatial if (f, u) == (1, 1) else []) + [unit_row, (
                    "QLT_FW_FDCQ_YZ", {**_common(unit, ywh, "100", "4", "BDCQZH", cert,
                                                 "2015-03-02T09:30:00"),
                                       "FDZL": unit_row[1]["ZL"], "TDSYQR": owner.name,
                                       "TDSYQSSJ": "2010-01-01", "TDSYJSSJ": "2079-12-31",
                                       "GHYT": "10", "FWXZ": "0", "FWJG": "2", "SZC": str(f),
                                       "ZCS": str(floors), "JZMJ": area, "ZYJZMJ": area,
                                       "FTJZMJ": "0.00", "FDCJYJG": "150.5"}),
                    _party(unit, cert, owner, 1)]
                out.messages.append(_msg(n, "1000402", ywh, unit, rows, encoding))
                out.rights["QLT_FW_FDCQ_YZ"] = out.rights.get("QLT_FW_FDCQ_YZ", 0) + 1
                n = _encumbrances(out, people, rng, unit, owner, n, encoding)
        if i == 0:
            n = _easement(out, zd, n, encoding)
    return out


def _encumbrances(out: MessageSet, people: PeopleFactory, rng: random.Random, unit: str,
                  owner: Person, n: int, encoding: str) -> int:
    def add(table: str, rec: str, djlx: str, qllx: str, extra: dict[str, str],
            parties: list[tuple[str, dict[str, str]]], cert: str | None) -> None:
        nonlocal n
        n += 1
        ywh = f"2016{n:08d}"
        row = {**_common(unit, ywh, djlx, qllx, "BDCDJZMH", cert, "2016-08-01T10:00:00"),
               **extra}
        out.messages.append(_msg(n, rec, ywh, unit, [(table, row), *parties], encoding))
        out.rights[table] = out.rights.get(table, 0) + 1

    r = rng.random()
    if r < 0.3:
        bank = people.organisation("中国工商银行股份有限公司杭州分行")
        cert = f"浙(2016)杭州市不动产证明第{n + 1:07d}号"
        add("QLF_QL_DYAQ", "9000101", "100", "37", {
            "DYBDCLX": "2", "DYR": owner.name, "DYFS": "1", "BDBZZQSE": "120.00",
            "ZWLXQSSJ": "2016-08-01", "ZWLXJSSJ": "2036-07-31", "ZJJZWDYFW": "全部"},
            [_party(unit, cert, bank, 1), _party(unit, cert, owner, 1, role=2)], cert)
    elif r < 0.4:
        add("QLF_QL_YGDJ", "7000101", "700", "4", {"YGDJZL": "1", "QDJG": "210.00",
                                                   "GHYT": "10", "JZMJ": "95.00"},
            [], f"浙(2016)杭州市不动产证明第{n + 1:07d}号")
    elif r < 0.47:
        add("QLF_QL_CFDJ", "8000101", "800", "99", {
            "CFJG": "杭州市西湖区人民法院", "CFLX": "1", "CFWH": f"(2016)浙0106执{n}号",
            "CFQSSJ": "2016-08-01", "CFJSSJ": "2019-07-31"}, [], None)
    elif r < 0.5:
        add("QLF_QL_YYDJ", "6000101", "600", "99", {"YYSX": "对房屋权属有异议"}, [],
            f"浙(2016)杭州市不动产证明第{n + 1:07d}号")
    elif r < 0.52:
        add("QLF_QL_ZXDJ", "4000101", "400", "4", {"ZXYY": "房屋灭失", "ZXSJ":
                                                     "2016-09-01T10:00:00"}, [],
            f"浙(2016)杭州市不动产证明第{n + 1:07d}号")
    return n


def _easement(out: MessageSet, zd: str, n: int, encoding: str) -> int:
    n += 1
    land = zd + "W00000000"
    ywh = f"2017{n:08d}"
    row = {**_common(land, ywh, "100", "19", "BDCDJZMH", f"浙(2017)杭州市不动产证明第{n:07d}号",
                     "2017-01-05T09:00:00"),
           "GYDBDCDYH": land, "XYDBDCDYH": out.parcels[0][:-5] + "00002W00000000",
           "DYQNR": "通行"}
    out.messages.append(_msg(n, "9000102", ywh, land, [("QLF_QL_DYIQ", row)], encoding))
    out.rights["QLF_QL_DYIQ"] = 1
    n += 1
    ywh = f"2010{n:08d}"
    cert = f"浙(2010)杭州市不动产权第{n:07d}号"
    row = {**_common(land, ywh, "100", "3", "BDCQZH", cert, "2010-01-10T09:00:00"),
           "SYQQSSJ": "2010-01-01", "SYQJSSJ": "2079-12-31", "SYQMJ": "3600.00"}
    out.messages.append(_msg(n, "1000301", ywh, land, [
        ("QLF_QL_JSYDSYQ", {**row, "TDSYQSSJ": "2010-01-01", "TDSYJSSJ": "2079-12-31",
                            "DYTDMJ": "3600.00"}),
        ("ZTT_GY_QLR", {"BDCDYH": land, "BDCQZH": cert, "SXH": "1", "QLRMC": "杭州某置业有限公司",
                        "ZJZL": "8", "ZJH": "91330106MA2AXXXX1X", "QLRLX": "2"})], encoding))
    out.rights["QLF_QL_JSYDSYQ"] = 1
    return n


def to_gpkg(ms: MessageSet, path, driver: str = "GPKG") -> None:  # noqa: ANN001
    """The same rows as TD/T 1066 tables in a GeoPackage: parcels with their polygon (from the
    ZD_K_103 rows), buildings with theirs, every other table without geometry; text fields."""
    import geopandas as gpd
    import pandas as pd
    import pyogrio
    from shapely import wkt
    from shapely.geometry import Polygon

    tables: dict[str, list[dict[str, str]]] = {}
    points: dict[str, list[tuple[int, float, float]]] = {}
    for _, body in ms.messages:
        for el in etree.fromstring(body).find("Data"):
            attrs = dict(el.attrib)
            if el.tag == "ZD_K_103":
                points.setdefault(attrs["BDCDYH"][:19], []).append(
                    (int(attrs["XH"]), float(attrs["YZB"]), float(attrs["XZB"])))
            else:
                tables.setdefault(el.tag, []).append(attrs)
    for table, rows in tables.items():
        df = pd.DataFrame(rows).astype("string")
        if table == "KTT_ZDJBXX":
            geom = [Polygon([(x, y) for _, x, y in sorted(points[r["ZDDM"]])]) for r in rows]
            df = gpd.GeoDataFrame(df, geometry=geom, crs="EPSG:4528")
        elif table == "KTT_FW_ZRZ":
            geom = [wkt.loads(r["X_GEOM"]) for r in rows]
            df = gpd.GeoDataFrame(df.drop(columns=["X_GEOM"]), geometry=geom, crs="EPSG:4528")
        if driver in ("GPKG", "OpenFileGDB"):
            pyogrio.write_dataframe(df, path, layer=table, driver=driver)
        else:                     # a folder of shapefiles (.dbf alone for plain tables)
            path.mkdir(exist_ok=True)
            pyogrio.write_dataframe(df, path / f"{table}.{'shp' if 'geometry' in df else 'dbf'}",
                                    driver="ESRI Shapefile", encoding="UTF-8")
