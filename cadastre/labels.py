"""Chinese display labels of the coded attributes the query API returns (``*_label`` fields).

Code tables: 房屋用途 FWYT (GB/T 17986.1 附录A), 房屋结构 FWJG, 土地用途 (GB/T 21010-2017, with
the 08H1/08H2 merged codes), 权利类型 QLLX, 登记类型 DJLX and 权属状态 QSZT (TD/T 1066), and the
dictionaries of the detail tables (抵押方式, 查封类型, 预告登记种类, 共有方式 ...). An unknown code
has no label (None), never a guess: clients then show the raw code.

房屋性质 FWXZ and 房屋类型 FWLX follow the TD/T 1066 dictionaries as the registration systems'
code tables give them (FWXZ 0-9 and 99 agree across several independent tables). FWLX: only the
codes 1-6 agree between the tables found; any other code (a local extension such as 公建配套,
or 其它, whose code the tables disagree on) has no label and is shown raw.
"""

from __future__ import annotations

from collections.abc import Mapping

HOUSE_USE: Mapping[str, str] = {
    "10": "住宅", "11": "成套住宅", "12": "非成套住宅", "13": "集体宿舍",
    "20": "工业、交通、仓储", "21": "工业", "22": "公用设施", "23": "铁路", "24": "民航",
    "25": "航运", "26": "公共运输", "27": "仓储",
    "30": "商业、金融、信息", "31": "商业服务", "32": "经营", "33": "旅游", "34": "金融保险",
    "35": "电讯信息",
    "40": "教育、医疗、卫生、科研", "41": "教育", "42": "医疗卫生", "43": "科研",
    "50": "文化、娱乐、体育", "51": "文化", "52": "新闻", "53": "娱乐", "54": "园林绿化",
    "55": "体育",
    "60": "办公", "61": "办公", "70": "军事", "71": "军事",
    "80": "其他", "81": "涉外", "82": "宗教", "83": "监狱",
}

HOUSE_TYPE: Mapping[int, str] = {   # 房屋类型 FWLX
    1: "住宅", 2: "商业用房", 3: "办公用房", 4: "工业用房", 5: "仓储用房", 6: "车库",
}

HOUSE_NATURE: Mapping[int, str] = {   # 房屋性质 FWXZ
    0: "市场化商品房", 1: "动迁房", 2: "配套商品房", 3: "公共租赁住房", 4: "廉租住房",
    5: "限价普通商品住房", 6: "经济适用住房", 7: "定销商品房", 8: "集资建房", 9: "福利房",
    99: "其它",
}

STRUCTURE: Mapping[int, str] = {
    1: "钢结构", 2: "钢和钢筋混凝土结构", 3: "钢筋混凝土结构", 4: "混合结构", 5: "砖木结构",
    6: "其他结构",
}

LAND_USE: Mapping[str, str] = {
    "0301": "乔木林地", "0401": "天然牧草地", "0901": "军事设施用地", "0902": "使领馆用地",
    "0905": "宗教用地",
    "01": "耕地", "0101": "水田", "0102": "水浇地", "0103": "旱地",
    "02": "园地", "03": "林地", "04": "草地",
    "05": "商服用地", "0501": "零售商业用地", "0502": "批发市场用地", "0503": "餐饮用地",
    "0504": "旅馆用地", "0505": "商务金融用地", "0506": "娱乐用地", "0507": "其他商服用地",
    "06": "工矿仓储用地", "0601": "工业用地", "0602": "采矿用地", "0603": "盐田",
    "0604": "仓储用地",
    "07": "住宅用地", "0701": "城镇住宅用地", "0702": "农村宅基地",
    "08": "公共管理与公共服务用地", "0801": "机关团体用地", "0802": "新闻出版用地",
    "0803": "教育用地", "0804": "科研用地", "0805": "医疗卫生用地", "0806": "社会福利用地",
    "0807": "文化设施用地", "0808": "体育用地", "0809": "公用设施用地", "0810": "公园与绿地",
    "08H1": "机关团体新闻出版用地", "08H2": "科教文卫用地",
    "09": "特殊用地",
    "10": "交通运输用地", "1001": "铁路用地", "1002": "轨道交通用地", "1003": "公路用地",
    "1004": "城镇村道路用地", "1005": "交通服务场站用地",
    "11": "水域及水利设施用地", "12": "其他土地",
}

RIGHT_TYPE: Mapping[int, str] = {
    1: "集体土地所有权", 2: "国家土地所有权", 3: "国有建设用地使用权",
    4: "国有建设用地使用权/房屋（构筑物）所有权", 5: "宅基地使用权", 6: "宅基地使用权/房屋所有权",
    7: "集体建设用地使用权", 8: "集体建设用地使用权/房屋所有权", 9: "土地承包经营权",
    10: "土地承包经营权/森林、林木所有权", 11: "林地使用权", 12: "林地使用权/森林、林木使用权",
    13: "草原使用权", 14: "水域滩涂养殖权", 15: "海域使用权", 16: "海域使用权/构（建）筑物所有权",
    17: "无居民海岛使用权", 18: "无居民海岛使用权/构（建）筑物所有权", 19: "地役权", 20: "取水权",
    21: "探矿权", 22: "采矿权", 23: "抵押权", 99: "其他",
}

#: 权利性质 QLXZ (TD/T 1066 dictionary, as vendors' code tables give it): 1xx state land,
#: 2xx collective land
RIGHT_NATURE: Mapping[int, str] = {
    100: "国有土地", 101: "划拨", 102: "出让", 103: "作价出资（入股）", 104: "国有土地租赁",
    105: "授权经营", 106: "家庭承包", 107: "其他方式承包",
    200: "集体土地", 201: "家庭承包", 202: "其他方式承包", 203: "批准拨用", 204: "入股",
    205: "联营",
}

REGISTRATION_TYPE: Mapping[int, str] = {
    100: "首次登记", 200: "转移登记", 300: "变更登记", 400: "注销登记", 500: "更正登记",
    600: "异议登记", 700: "预告登记", 800: "查封登记", 900: "其他登记",
}

RIGHT_STATUS: Mapping[int, str] = {0: "临时", 1: "现势", 2: "历史"}

RIGHT_KIND: Mapping[str, str] = {
    "ownership": "房屋所有权", "land_use": "建设用地使用权", "mortgage": "抵押权",
    "pre_notice": "预告登记", "seizure": "查封登记", "objection": "异议登记", "easement": "地役权",
    "cancellation": "注销登记",
}

REGISTRATION_STATUS: Mapping[str, str] = {
    "registered": "已登记", "pre_sale": "已预告（预售）", "unregistered": "未登记",
}

#: encumbrance flags of cad.unit_status (限制/提示事项), in display order
ENCUMBRANCE: Mapping[str, str] = {
    "seized": "查封", "mortgaged": "抵押", "objected": "异议", "pre_noticed": "预告",
}

PARTY_TYPE: Mapping[int, str] = {1: "个人", 2: "企业", 3: "事业单位", 4: "国家机关", 99: "其他"}

ID_TYPE: Mapping[int, str] = {
    1: "居民身份证", 2: "港澳台身份证", 3: "护照", 4: "户口簿", 5: "军官证（士兵证）",
    6: "组织机构代码", 7: "营业执照", 8: "统一社会信用代码", 99: "其他",
}

PARTY_ROLE: Mapping[int, str] = {1: "权利人", 2: "义务人", 3: "债务人", 4: "申请人"}

CO_OWNERSHIP: Mapping[int, str] = {0: "单独所有", 1: "共同共有", 2: "按份共有", 3: "其他共有"}

MORTGAGE_TYPE: Mapping[int, str] = {1: "一般抵押", 2: "最高额抵押"}

MORTGAGE_PROPERTY: Mapping[int, str] = {
    1: "土地", 2: "土地和房屋", 3: "林地和林木", 4: "土地和在建建筑物", 5: "海域",
    6: "海域和构筑物", 7: "其他",
}

SEIZURE_TYPE: Mapping[int, str] = {
    1: "查封", 2: "轮候查封", 3: "预查封", 4: "轮候预查封", 5: "续封",
}

NOTICE_KIND: Mapping[int, str] = {
    1: "预售商品房买卖", 2: "其他不动产买卖", 3: "预售商品房抵押权", 4: "其他不动产抵押权",
}


def label(table: Mapping, code: object) -> str | None:  # type: ignore[type-arg]
    """The label of ``code`` in ``table`` (None for None or an unknown code)."""
    if code is None:
        return None
    if isinstance(code, str):
        code = code.strip()
    return table.get(code)


def encumbrance_labels(flags: Mapping[str, object]) -> list[str]:
    """['查封', '抵押', ...] for the flags that are set (in ENCUMBRANCE order)."""
    return [text for name, text in ENCUMBRANCE.items() if flags.get(name)]


def printed(table: Mapping, code: object) -> str:  # type: ignore[type-arg]
    """As printed on documents: ``printed(LAND_USE, '0701')`` → '城镇住宅用地（0701）'; unknown
    codes print as themselves, missing ones as '—'."""
    if code is None or code == "":
        return "—"
    name = label(table, code)
    return f"{name}（{code}）" if name else str(code)
