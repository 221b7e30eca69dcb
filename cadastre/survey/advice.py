"""What a surveyor or registrar can do about each finding of a validation report (中文 / English).

Every code a reader, a QA rule or the acceptance check can report has its entry; ``advice``
falls back to a general sentence for a code that has none (a test keeps the table complete).
"""

from __future__ import annotations

__all__ = ["ADVICE", "advice", "has_advice"]

_FIX_FILE = ("请按提示修改文件后重新提交",
             "correct the file as the message says and submit it again")
_CRS = ("请在提交时指定坐标系(EPSG)，或在文件中写明坐标系/带号",
        "give the EPSG code when submitting, or state the CRS/zone in the file")

ADVICE: dict[str, tuple[str, str]] = {
    # the file as a whole
    "FILE_TOO_LARGE": ("请分区分批提交", "split the survey into smaller submissions"),
    "FILE_EMPTY": ("请重新上传完整的文件", "upload the complete file again"),
    "FILE_TRUNCATED": ("文件不完整（上传中断？），请重新上传", "the file is cut off (interrupted "
                       "upload?): upload it again"),
    "FILE_CORRUPT": ("请用原软件重新导出文件",
                     "export the file again from the software that made it"),
    "FORMAT_UNKNOWN": ("请提交TXT、DXF、Shapefile(zip)、GeoPackage、GeoJSON、FlatGeobuf、CSV或IFC",
                       "submit TXT, DXF, zipped Shapefile, GeoPackage, GeoJSON, FlatGeobuf, CSV or "
                       "IFC"),
    "FORMAT_UNSUPPORTED": ("请改用支持的格式（如GeoJSON或DXF）", "use a supported format (such as "
                           "GeoJSON or DXF)"),
    "FORMAT_MISMATCH": ("请核对文件扩展名与内容", "check that the file's extension matches its "
                        "content"),
    "EXTENSION_MISMATCH": ("无需处理；建议改正扩展名", "nothing to do; better rename the file"),
    "ENCODING_UNKNOWN": ("请以UTF-8或GBK编码保存文件", "save the file as UTF-8 or GBK"),
    "ENCODING_NOT_UTF8": ("无需处理；建议以UTF-8保存", "nothing to do; better save as UTF-8"),
    "DXF_ENCODING_GUESSED": ("请核对图中的中文注记是否正确", "check that the Chinese texts read "
                             "correctly"),
    "SURVEY_EMPTY": ("请确认文件中有宗地、界址点、幢或户，并检查图层名/字段名",
                     "make sure the file holds parcels, boundary points, buildings or units, and "
                     "check its layer and field names"),
    "FIELDS_NOT_RECOGNISED": ("按建议的字段映射重新提交（--field-map / 字段映射），或声明为新宗地",
                              "submit again with the suggested field map (--field-map), or "
                              "declare the parcels new"),
    "LAYER_SKIPPED": ("将图层改名（如ZDJBXX、ZRZ、H）或提供字段映射", "rename the layer (e.g. "
                      "ZDJBXX, ZRZ, H) or give a field map"),
    "KIND_UNKNOWN": ("kind字段应为 parcel/building/floor/unit/boundary_point", "the kind field "
                     "must be parcel, building, floor, unit or boundary_point"),
    "CSV_COLUMNS_MISSING": ("CSV需含点号、X(北)、Y(东)列", "the CSV needs point number, X "
                            "(north) and Y (east) columns"),
    "TXT_NO_PARCELS": ("TXT需含[地块坐标]节和以@结尾的地块头行", "the TXT needs a [地块坐标] "
                       "section and parcel header lines ending in @"),
    "LINE_UNPARSEABLE": ("按“点号,圈号,X,Y”改正该行", "correct the line to 'point,ring,X,Y'"),
    "PARCEL_HEADER_MISSING": ("在界址点前加地块头行（以@结尾）", "add a parcel header line "
                              "(ending in @) before its points"),
    "POINT_COUNT_MISMATCH": ("核对头行的界址点数", "check the point count in the header line"),
    "AREA_UNPARSEABLE": ("地块面积应为数字（公顷）", "the parcel area must be a number "
                         "(hectares)"),
    "DXF_NO_BOUNDARY_LAYER": ("把界址线画在JZX/ZD等图层上，或用分层图层（F01…）", "draw "
                              "boundaries on layer JZX/ZD …, or floor layers (F01 …)"),
    "DXF_UNITS": ("确认图形单位为米", "make sure the drawing units are metres"),
    "DXF_DUPLICATE_BOUNDARY": ("删除重复的界址线", "delete the duplicate boundary"),
    "DXF_MULTIPLE_CODES": ("每宗地内只保留一个宗地代码注记", "keep one parcel code text per "
                           "parcel"),
    "DXF_POLYGONIZED": ("无需处理；建议将宗地画成闭合多段线", "nothing to do; better draw parcels "
                        "as closed polylines"),
    "ZIP_BOMB": _FIX_FILE, "ZIP_ENCRYPTED": ("请提交未加密的压缩包", "submit an unencrypted "
                                             "archive"),
    "ZIP_NESTED": ("请解开内层压缩包后再打包", "unpack the inner archive first"),
    "ZIP_NO_SURVEY_FILE": ("压缩包中应有Shapefile、TXT、DXF等成果文件", "the archive must hold "
                           "a Shapefile, TXT, DXF …"),
    "ZIP_TOO_MANY_FILES": ("请减少压缩包中的文件数", "put fewer files in the archive"),
    "ZIP_UNSAFE_PATH": ("压缩包中的路径不得含..或绝对路径", "archive paths must not contain .. "
                        "or be absolute"),
    "ZIP_FILE_IGNORED": ("无需处理；确认被忽略的文件不是成果", "nothing to do; make sure the "
                         "ignored files are not survey data"),
    "SHP_MISSING_PART": ("将.shp、.shx、.dbf（及.prj）一起打包", "zip .shp, .shx, .dbf (and .prj) "
                         "together"),
    # coordinates and placement
    "CRS_UNKNOWN": _CRS,
    "CRS_MIXED": ("请将所有图层/文件转换到同一坐标系", "bring every layer/file into one CRS"),
    "CRS_ZONE_MISMATCH": ("核对带号与横坐标前缀", "check 带号 against the easting's zone prefix"),
    "CRS_ASSUMED": ("如不是2000国家大地坐标系，请在文件中写明", "if the CRS is not CGCS2000, "
                    "state it in the file"),
    "CRS_REPROJECTED": ("无需处理；请核对投影后的位置", "nothing to do; check the position after "
                        "reprojection"),
    "CRS_GEOJSON_NOT_WGS84": ("在GeoJSON中写明坐标系(crs)", "state the CRS (crs member) in the "
                              "GeoJSON"),
    "ZONE_INFERRED": ("无需处理；建议填写带号", "nothing to do; better fill in 带号"),
    "ZONE_WIDTH_MISMATCH": ("核对3度带/6度带", "check the zone width (3 or 6 degrees)"),
    "AXES_SWAPPED": ("CAD中X应为东、Y应为北：交换坐标后重新提交", "in CAD x is east and y north: "
                     "swap the coordinates and submit again"),
    "COORDINATE_NOT_FINITE": _FIX_FILE,
    "COORDINATE_OUT_OF_RANGE": ("检查坐标系/带号是否正确，或坐标是否为局部坐标"
                                "（局部平面图请指定所在自然幢定位）",
                                "check the CRS/zone, or whether the coordinates are local "
                                "(anchor a local plan to its building)"),
    "PLACED_BY_SITE_REFERENCE": ("核对图上位置；需要更准时请用控制点定位到自然幢", "check the "
                                 "position on the map; for more accuracy anchor the plan to its "
                                 "building by control points"),
    "ANCHOR_INVALID": ("核对自然幢代码和控制点（x,y:东,北;…）", "check the building code and the "
                       "control points (x,y:E,N;…)"),
    "ANCHOR_BUILDING_NOT_FOUND": ("核对自然幢代码（须为现势自然幢）", "check the building code (a "
                                  "current building)"),
    "PLAN_OUTLINE_MISSING": ("改用控制点定位", "place the plan by control points instead"),
    "PLACEMENT_RESIDUAL_TOO_LARGE": ("核对控制点或自然幢；确认平面图为该幢", "check the control "
                                     "points or the building; make sure the plan is of it"),
    "PLACEMENT_AMBIGUOUS": ("用两个控制点定位", "place the plan by two control points"),
    # features
    "GEOMETRY_INVALID": ("修正自相交/重复点等图形错误", "repair the geometry (self-intersections, "
                         "repeated points …)"),
    "GEOMETRY_MISSING": ("为该要素补充图形", "give the feature a geometry"),
    "GEOMETRY_TYPE_MISMATCH": ("宗地、幢、户应为面，界址点应为点", "parcels, buildings and units "
                               "are polygons, boundary points points"),
    "LINE_AS_POLYGON": ("无需处理；建议画成面", "nothing to do; better draw it as a polygon"),
    "RING_CLOSED": ("无需处理", "nothing to do"),
    "RING_TOO_FEW_POINTS": ("每个环至少需要3个不同的界址点", "a ring needs at least 3 distinct "
                            "points"),
    "PARCEL_NO_POINTS": ("为该地块补充界址点", "add the parcel's boundary points"),
    "DUPLICATE_POINT": ("删除重复的界址点", "delete the repeated point"),
    "POINT_OFF_BOUNDARY": ("核对界址点坐标或所属宗地", "check the point's coordinates or parcel"),
    "SPACE_WITHOUT_STOREY": ("将该房间归入楼层(IfcBuildingStorey)", "put the space in a storey "
                             "(IfcBuildingStorey)"),
    "FLOOR_ELEVATION_MISSING": ("在图层名或注记中给出层底标高", "give the base elevation in the "
                                "layer name or a text"),
    "PARCEL_CODE_INVALID": ("核对宗地代码（19位，GB/T 37346）", "check the parcel code (19 "
                            "characters, GB/T 37346)"),
    "UNIT_CODE_INVALID": ("核对不动产单元代码（28位）", "check the unit code (28 characters)"),
    "UNIT_CODE_MISSING": ("在户内注记不动产单元代码，否则该户不会登记", "write the unit code in "
                          "the unit, or it will not be registered"),
    "DUPLICATE_PARCEL_CODE": ("每个宗地代码只能出现一次", "each parcel code may occur once"),
    "DUPLICATE_UNIT_CODE": ("每个不动产单元代码只能出现一次", "each unit code may occur once"),
    # acceptance (what 登簿 of the survey needs)
    "PARCEL_CODE_MISSING": ("映射宗地代码字段（如 parcel_code=…），"
                            "或声明为新宗地（由地籍子区赋码）",
                            "map the parcel code field (parcel_code=…), or declare new parcels "
                            "(coded from their cadastral subdistrict)"),
    "PARCEL_OUTSIDE_SUBDISTRICT": ("请登记员设立包含该宗地的地籍子区"
                                   "（cadastre subdistrict add），或检查坐标系是否正确",
                                   "ask a registrar to set up the cadastral subdistrict that "
                                   "contains it (cadastre subdistrict add), or check the CRS"),
    "PARCEL_SEQUENCE_EXHAUSTED": ("请登记员划分新的地籍子区", "ask a registrar to open a new "
                                  "cadastral subdistrict"),
    "NEW_PARCEL_CODED": ("核对赋予的宗地代码和特征码", "check the assigned code and feature "
                         "code"),
    "LAND_USE_TOO_LONG": ("地类编码最多6位（GB/T 21010）：核对字段映射", "land use codes have at "
                          "most 6 characters (GB/T 21010): check the field map"),
    "BUILDING_CODE_MISSING": ("为该幢提供24位自然幢代码，否则不会登记", "give the building its "
                              "24-character code, or it will not be registered"),
    "UNIT_FLOOR_INVALID": ("层号不能为0：核对图层/楼层名", "the floor number cannot be 0: check "
                           "the layer/storey name"),
    "VALUE_OUT_OF_RANGE": ("核对该数值（面积、高度、层数）", "check the value (area, height, "
                           "floors)"),
    # QA rules
    "GEOM_INVALID": ("修正自相交等图形错误", "repair the geometry (self-intersection …)"),
    "GEOM_TOO_FEW_POINTS": ("每个环至少需要3个不同的界址点", "a ring needs 3 distinct points"),
    "GEOM_DUPLICATE_VERTEX": ("删除重复的界址点", "delete the repeated vertex"),
    "GEOM_SPIKE": ("检查该尖角处的界址点（可能录错）", "check the points at the spike (a typo?)"),
    "AREA_MISMATCH": ("核对登记/申报面积或界址点", "check the declared area or the boundary "
                      "points"),
    "OVERLAP": ("与相邻宗地的界址应一致：核对界址点", "the boundary must match the neighbour's: "
                "check the boundary points"),
    "GAP_SLIVER": ("相邻宗地应共用界址点：消除缝隙", "neighbours share boundary points: close "
                   "the gap"),
    "BUILDING_OUTSIDE_PARCEL": ("核对自然幢轮廓或其宗地代码", "check the building outline or its "
                                "parcel code"),
    "UNIT_OUTSIDE_BUILDING": ("核对户的轮廓或自然幢", "check the unit's outline or its "
                              "building"),
    "UNIT_OVERLAP": ("同层的户不能重叠：核对户界线", "units on one floor cannot overlap: check "
                     "their outlines"),
    "UNIT_CODE_PARCEL_MISMATCH": ("核对单元代码的前19位或户的位置", "check the unit code's first "
                                  "19 characters or where the unit lies"),
    "UNIT_CODE_DUPLICATE": ("每个不动产单元代码只能出现一次", "each unit code may occur once"),
    "FLOOR_AREA_SUM": ("核对各层面积与幢面积", "check the floor areas against the building's"),
    "BOUNDARY_POINT_MISMATCH": ("相邻宗地的共用界址点应坐标一致", "shared boundary points must "
                                "have one position"),
    "BOUNDARY_POINT_NUMBERING": ("按顺序重新编号界址点", "number the boundary points "
                                 "consecutively"),
    "RECORD_ORPHAN": ("为该记录补充空间单元", "give the record its spatial unit"),
    "UNIT_WITHOUT_RECORD": ("无需处理", "nothing to do"),
}


def has_advice(code: str) -> bool:
    return code in ADVICE


def advice(code: str) -> str:
    zh, en = ADVICE.get(code, _FIX_FILE)
    return f"{zh} / {en}"
