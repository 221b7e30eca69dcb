"""Synthetic parties for the demo district: names, ID numbers, phones, companies.

Everything is drawn from a seeded ``random.Random`` so the demo is identical on every run. ID
numbers carry a valid GB 11643 check character; company codes a valid GB 32100 (统一社会信用代码)
check character. None of these people exist.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN_CHARS = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志强文博思远子涵欣怡梓轩浩然宇轩雨桐"
    "晨阳佳怡一诺俊杰嘉怡晓东海燕春梅秋菊冬梅玉兰德华建华立新振华红梅丽华凤英国强永刚海涛"
)
# Zhejiang and neighbouring county codes used as birth places (GB/T 2260)
BIRTH_REGIONS = (
    "330106", "330102", "330105", "330108", "330109", "330110", "330122", "330182",
    "330203", "330302", "330402", "330502", "330602", "320102", "310104", "340102",
    "360102", "410105", "420106", "510104",
)
MOBILE_PREFIXES = ("130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152",
                   "157", "158", "159", "166", "177", "180", "181", "186", "187", "188", "189")
STREETS = ("文三路", "文二路", "天目山路", "学院路", "教工路", "古翠路", "西溪路", "莫干山路",
           "余杭塘路", "紫荆花路", "丰潭路", "萍水街", "五常大道", "留下街")
BANKS = ("中国工商银行股份有限公司杭州西湖支行", "中国建设银行股份有限公司杭州城西支行",
         "中国农业银行股份有限公司杭州西湖支行", "中国银行股份有限公司杭州市西湖支行",
         "招商银行股份有限公司杭州分行", "杭州银行股份有限公司西湖支行",
         "浙江杭州余杭农村商业银行股份有限公司")
DEVELOPER_WORDS = ("绿城", "滨江", "万科", "金地", "中天", "坤和", "龙湖", "融信", "德信", "大家")
COURTS = ("杭州市西湖区人民法院", "杭州市中级人民法院", "杭州市拱墅区人民法院",
          "杭州市上城区人民法院")

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_char(first17: str) -> str:
    """GB 32100-2015 check character of a 统一社会信用代码."""
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _id_number(region: str, birth: date, seq: int) -> str:
    """``build_id_number`` for the generator's own (always valid) parts, without its checks:
    the same string, a tenth of the time (millions of parties at scale)."""
    first17 = f"{region}{birth.year:04d}{birth.month:02d}{birth.day:02d}{seq:03d}"
    total = sum(map(int.__mul__, map(int, first17), _ID_WEIGHTS))
    return first17 + _ID_CHECK[total % 11]


@dataclass(frozen=True)
class Person:
    party_type: int          # QLRLX 1 个人, 2 企业, 3 事业单位, 4 国家机关
    id_type: int             # ZJZL 1 居民身份证, 8 统一社会信用代码
    name: str
    id_number: str
    phone: str | None
    address: str | None


class PeopleFactory:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._seq: dict[tuple[str, date], int] = {}
        self._uscc = 0

    def begin_block(self, block_id: int) -> None:
        """Block mode (see RegistryBuilder.begin_block): company codes numbered within the block
        (block × 1000 + n; a block has a few hundred companies at most)."""
        self._seq = {}
        self._uscc = block_id * 1000

    def _name(self) -> str:
        r = self.rng
        given = r.choice(GIVEN_CHARS) if r.random() < 0.3 else r.choice(GIVEN_CHARS) + r.choice(
            GIVEN_CHARS
        )
        return r.choice(SURNAMES) + given

    def _id_number(self) -> str:
        r = self.rng
        region = r.choice(BIRTH_REGIONS)
        birth = date(1950, 1, 1) + timedelta(days=r.randrange(0, 365 * 52))
        key = (region, birth)
        # sequence numbers must not repeat for the same region and birth date
        seq = self._seq.get(key, r.randrange(1, 400)) + 1
        self._seq[key] = seq
        return _id_number(region, birth, seq % 1000 or 1)

    def _phone(self) -> str:
        return self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(0, 10**8):08d}"

    def _address(self) -> str:
        r = self.rng
        return f"浙江省杭州市西湖区{r.choice(STREETS)}{r.randrange(1, 400)}号"

    def person(self) -> Person:
        return Person(1, 1, self._name(), self._id_number(), self._phone(), self._address())

    def organisation(self, name: str, party_type: int = 2) -> Person:
        self._uscc += 1
        body = f"91330106{self._uscc:09d}"  # 9 = 工商, 1 = 企业, 330106 = 西湖区
        if party_type != 2:
            body = f"12330106{self._uscc:09d}"  # 1 = 机构编制, 2 = 事业单位
        code = body + uscc_check_char(body)
        phone = f"0571{self.rng.randrange(10**7, 10**8)}"
        return Person(party_type, 8, name, code, phone, self._address())

    def developer_name(self, n: int) -> str:
        word = DEVELOPER_WORDS[n % len(DEVELOPER_WORDS)]
        return f"杭州{word}房地产开发有限公司{'' if n < 10 else n}"
