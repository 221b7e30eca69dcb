"""CAD/BIM fixtures: a CASS-style cadastral DXF, a per-floor DXF floor plan and an IFC model.

Imported by make_fixtures.py.  Synthetic data in CGCS2000 3° GK zone 40 (EPSG:4528).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import ezdxf
import numpy as np

CAD_E0, CAD_N0 = 40_514_000.0, 3_352_000.0
FLOORS_E0, FLOORS_N0 = 40_513_500.0, 3_351_500.0
IFC_E0, IFC_N0 = 40_514_500.0, 3_352_500.0
DXF_CODES = [f"330106001001GB0003{i}" for i in range(1, 6)]
FLOORS_BUILDING = "330106001001GB00024F0001"
IFC_BUILDING = "330106001001GB00025F0001"


def _xy(x: float, y: float, e0: float = CAD_E0, n0: float = CAD_N0) -> tuple[float, float]:
    return e0 + x, n0 + y


def _rect(x0: float, y0: float, x1: float, y1: float, **kw: float) -> list[tuple[float, float]]:
    return [_xy(x0, y0, **kw), _xy(x1, y0, **kw), _xy(x1, y1, **kw), _xy(x0, y1, **kw)]


def cadastral_dxf(path: Path) -> None:
    doc = ezdxf.new("R2010", setup=True)
    doc.header["$INSUNITS"] = 6
    doc.appids.add("SOUTH")
    for name in ("JZX", "JZD", "ZDH", "权属线", "JMD", "ZDX2"):
        doc.layers.add(name)
    block = doc.blocks.new("JZD")
    block.add_circle((0, 0), 0.2)
    block.add_attdef("JZDH", (0.5, 0.5), dxfattribs={"height": 0.5})
    msp = doc.modelspace()
    # P1: an arc (bulge 0.2) on its east edge
    p1 = [(*_xy(0, 0), 0), (*_xy(50, 0), 0.2), (*_xy(50, 40), 0), (*_xy(0, 40), 0)]
    msp.add_lwpolyline(p1, format="xyb", close=True, dxfattribs={"layer": "JZX"})
    msp.add_text(DXF_CODES[0], dxfattribs={"layer": "ZDH", "insert": _xy(20, 20), "height": 1})
    msp.add_text("2107.62", dxfattribs={"layer": "ZDH", "insert": _xy(20, 17), "height": 1})
    # P2: old-style POLYLINE with an unlabelled inner ring (hole) and a labelled one (P3)
    msp.add_polyline2d(_rect(60, 0, 120, 40), close=True, dxfattribs={"layer": "JZX"})
    msp.add_mtext(
        f"{DXF_CODES[1]}\\P住宅用地",
        dxfattribs={"layer": "ZDH", "insert": _xy(65, 35), "char_height": 1},
    )
    msp.add_lwpolyline(_rect(70, 10, 80, 20), close=True, dxfattribs={"layer": "JZX"})
    msp.add_lwpolyline(_rect(95, 10, 110, 30), close=True, dxfattribs={"layer": "权属线"})
    msp.add_text(DXF_CODES[2], dxfattribs={"layer": "ZDH", "insert": _xy(96, 20), "height": 1})
    # P4: four separate LINEs (polygonised)
    corners = _rect(130, 0, 160, 40)
    for a, b in zip(corners, corners[1:] + corners[:1], strict=True):
        msp.add_line(a, b, dxfattribs={"layer": "JZX"})
    msp.add_text(DXF_CODES[3], dxfattribs={"layer": "ZDH", "insert": _xy(135, 20), "height": 1})
    # P5: on an unlisted layer but tagged as 界址线 by SOUTH XDATA 302002
    p5 = msp.add_lwpolyline(_rect(170, 0, 200, 40), close=True, dxfattribs={"layer": "ZDX2"})
    p5.set_xdata("SOUTH", [(1000, "302002")])
    msp.add_text(DXF_CODES[4], dxfattribs={"layer": "ZDH", "insert": _xy(175, 20), "height": 1})
    # boundary points: POINT + number TEXT for P1, INSERT + ATTRIB for P2, one stray point
    for i, (x, y) in enumerate([(0, 0), (50, 0), (50, 40), (0, 40)], start=1):
        msp.add_point(_xy(x, y), dxfattribs={"layer": "JZD"})
        msp.add_text(
            f"J{i}", dxfattribs={"layer": "JZD", "insert": _xy(x + 0.6, y + 0.6), "height": 0.5}
        )
    for i, (x, y) in enumerate([(60, 0), (120, 0), (120, 40), (60, 40)], start=5):
        ref = msp.add_blockref("JZD", _xy(x, y), dxfattribs={"layer": "JZD"})
        ref.add_auto_attribs({"JZDH": f"J{i}"})
    msp.add_point(_xy(30, 60), dxfattribs={"layer": "JZD"})
    msp.add_text("J99", dxfattribs={"layer": "JZD", "insert": _xy(30.6, 60.6), "height": 0.5})
    # noise: a house outline (居民地) and a road line on other layers
    msp.add_lwpolyline(_rect(5, 5, 15, 15), close=True, dxfattribs={"layer": "JMD"})
    msp.add_line(_xy(-10, -5), _xy(210, -5), dxfattribs={"layer": "0"})
    doc.saveas(path)


def _unit_texts(msp, layer: str, x: float, code: str, room: str, use: str) -> None:
    for dy, text in (
        (7, code),
        (5, room),
        (3, "建筑面积=120.00"),
        (2, "套内面积=102.50"),
        (4, "分摊面积=17.50"),
        (1, f"用途:{use}"),
    ):
        msp.add_text(
            text,
            dxfattribs={"layer": layer, "height": 0.3, "insert": _xy(x, dy, FLOORS_E0, FLOORS_N0)},
        )


def floors_dxf(path: Path) -> None:
    doc = ezdxf.new("R2010")
    doc.header["$INSUNITS"] = 6
    doc.appids.add("CADASTRE")
    msp = doc.modelspace()
    specs = [
        ("F01", 1, None),
        ("F02", 2, ["标高=3.000", "层高=3.0"]),
        ("3层", 3, ["EL=6.00", "层高=3.0"]),
        ("-1F@-3.30", -1, ["层高=3.3"]),
    ]
    for layer_name, floor, texts in specs:
        layer = doc.layers.add(layer_name)
        if layer_name == "F01":
            layer.set_xdata(
                "CADASTRE",
                [(1000, "base_elevation"), (1040, 0.0), (1000, "storey_height"), (1040, 3.0)],
            )
        kw = {"e0": FLOORS_E0, "n0": FLOORS_N0}
        msp.add_lwpolyline(
            _rect(0, 0, 24, 10, **kw), close=True, dxfattribs={"layer": layer_name}
        )  # floor outline
        for k, x0 in enumerate((0, 12), start=1):
            msp.add_lwpolyline(
                _rect(x0, 0, x0 + 12, 10, **kw), close=True, dxfattribs={"layer": layer_name}
            )
            unit_no = (90 if floor < 0 else floor) * 100 + k
            room = f"{'B' if floor < 0 else ''}{abs(floor)}0{k}"
            _unit_texts(
                msp,
                layer_name,
                x0 + 1,
                f"{FLOORS_BUILDING}{unit_no:04d}",
                room,
                "车库" if floor < 0 else "住宅",
            )
        for i, text in enumerate(texts or []):
            msp.add_text(
                text,
                dxfattribs={
                    "layer": layer_name,
                    "height": 0.5,
                    "insert": _xy(0, 12 + i, FLOORS_E0, FLOORS_N0),
                },
            )
    doc.saveas(path)


def ifc_model(path: Path) -> None:
    import ifcopenshell
    import ifcopenshell.api
    import ifcopenshell.guid

    run = ifcopenshell.api.run
    f = run("project.create_file", version="IFC4")
    project = run("root.create_entity", f, ifc_class="IfcProject", name="西湖区示例楼")
    run("unit.assign_unit", f, length={"is_metric": True, "raw": "MILLIMETERS"})
    model = run("context.add_context", f, context_type="Model")
    body = run(
        "context.add_context",
        f,
        context_type="Model",
        context_identifier="Body",
        target_view="MODEL_VIEW",
        parent=model,
    )
    crs = f.createIfcProjectedCRS(Name="EPSG:4528", Description="CGCS2000 / 3-degree GK zone 40")
    f.createIfcMapConversion(
        SourceCRS=model,
        TargetCRS=crs,
        Eastings=IFC_E0,
        Northings=IFC_N0,
        OrthogonalHeight=0.0,
        XAxisAbscissa=0.8,
        XAxisOrdinate=0.6,
        Scale=0.001,
    )
    site = run("root.create_entity", f, ifc_class="IfcSite", name="Site")
    building = run("root.create_entity", f, ifc_class="IfcBuilding", name=IFC_BUILDING)
    run("aggregate.assign_object", f, products=[site], relating_object=project)
    run("aggregate.assign_object", f, products=[building], relating_object=site)
    for floor, elevation in ((1, 0.0), (2, 3000.0)):
        storey = run("root.create_entity", f, ifc_class="IfcBuildingStorey", name=f"{floor}F")
        storey.Elevation = elevation
        run("aggregate.assign_object", f, products=[storey], relating_object=building)
        run(
            "geometry.edit_object_placement",
            f,
            product=storey,
            matrix=_translation(0, 0, elevation / 1000),
        )
        for k, x0 in enumerate((0.0, 6.0), start=1):
            _ifc_space(f, body, storey, floor, k, x0, elevation)
    for i, entity in enumerate(f.by_type("IfcRoot")):
        entity.GlobalId = ifcopenshell.guid.compress(
            uuid.uuid5(uuid.NAMESPACE_URL, f"fixture/{i}").hex
        )
    f.header.file_name.time_stamp = "2024-01-01T00:00:00"
    f.write(str(path))


def _translation(x: float, y: float, z: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return m


def _ifc_space(f, body, storey, floor: int, k: int, x0: float, elevation: float) -> None:
    import ifcopenshell.api

    run = ifcopenshell.api.run
    code = f"{IFC_BUILDING}{floor:02d}{k:02d}"
    space = run("root.create_entity", f, ifc_class="IfcSpace", name=code)
    space.LongName = "住宅"
    run("aggregate.assign_object", f, products=[space], relating_object=storey)
    run(
        "geometry.edit_object_placement",
        f,
        product=space,
        matrix=_translation(x0, 0.0, elevation / 1000),
    )
    origin2d = f.createIfcAxis2Placement2D(f.createIfcCartesianPoint((3000.0, 4000.0)))
    profile = f.createIfcRectangleProfileDef("AREA", None, origin2d, 6000.0, 8000.0)
    solid = f.createIfcExtrudedAreaSolid(
        profile,
        f.createIfcAxis2Placement3D(f.createIfcCartesianPoint((0.0, 0.0, 0.0))),
        f.createIfcDirection((0.0, 0.0, 1.0)),
        2800.0,
    )
    rep = f.createIfcShapeRepresentation(body, "Body", "SweptSolid", [solid])
    space.Representation = f.createIfcProductDefinitionShape(None, None, [rep])
    pset = run("pset.add_pset", f, product=space, name="Pset_BDC")
    run(
        "pset.edit_pset",
        f,
        pset=pset,
        properties={"BDCDYH": code, "FWYT": "住宅", "SCJZMJ": 55.8, "SCFTJZMJ": 7.8},
    )
    qto = run("pset.add_qto", f, product=space, name="Qto_SpaceBaseQuantities")
    run("pset.edit_qto", f, qto=qto, properties={"NetFloorArea": 48.0, "Height": 2.8})


def write_all(good: Path) -> None:
    cadastral_dxf(good / "cadastre_cass.dxf")
    floors_dxf(good / "floors.dxf")
    try:
        ifc_model(good / "building.ifc")
    except ImportError:
        print("ifcopenshell not installed: building.ifc kept as committed")
