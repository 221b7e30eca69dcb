"""Parcel codes (宗地代码, 19 chars) and real-estate unit codes (不动产单元代码, 28 chars).

Layout per GB/T 37346-2019 《不动产单元设定与代码编制规则》::

    pos  1-6   county code (县级行政区划代码, GB/T 2260)
    pos  7-9   cadastral district (地籍区)
    pos 10-12  cadastral subdistrict (地籍子区)
    pos 13     ownership char (宗地特征码-1): G state, J collective, Z undetermined/disputed
    pos 14     right char (宗地特征码-2): A B S X C D E F G H W Y (A and C only after J)
    pos 15-19  parcel sequence (宗地顺序号) 00001-99999
    pos 20     fixture char (定着物特征码): F building, L forest, Q other fixture, W none
    pos 21-28  fixture unit number (定着物单元编号): for F 幢号(4) + 户号(4); for W 00000000

The parts of a code that the rest of the system reads (county, parcel code, building code,
sequence prefix, fixture char) come from the helpers under "parts of a code" below (in SQL:
``county_sql``); no other module slices a code by position in Python.

Every broken rule is reported as a :class:`CodeError` with a stable ``code``, a 1-based
``position`` (or None) and a bilingual message (Chinese first, then English).  Codes are
checked strictly: no whitespace trimming and no case folding (a lowercase letter is reported
as ``*_LOWERCASE``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cadastre.errors import InvalidInput

#: the code column of each entity that has one
CODE_COLUMN = {"parcel": "parcel_code", "building": "building_code", "unit": "unit_code"}
# The county of the code in query parameter ``ref``, as the partition key of the tables
# partitioned by county (migration 0024): a query naming it reads only that county's partition.
COUNTY_OF_REF = "t.county_code = left(%(ref)s, 6)::bpchar"

COUNTY_CODE_LENGTH = 6
ZONE_LENGTH = 12          # county + 地籍区 + 地籍子区: the scope of parcel sequence numbers
PARCEL_CODE_LENGTH = 19
UNIT_CODE_LENGTH = 28
BUILDING_CODE_LENGTH = 24

OWNERSHIP_CHARS = frozenset("GJZ")
RIGHT_CHARS = frozenset("ABSXCDEFGHWY")
COLLECTIVE_ONLY_RIGHT_CHARS = frozenset("AC")
FIXTURE_CHARS = frozenset("FLQW")

#: 幢号 9999 marks "several buildings of one parcel registered as one unit" (F9999xxxx).
MULTI_BUILDING_NO = 9999
MAX_BUILDING_NO = 9999
MAX_UNIT_NO = 9999
MAX_PARCEL_SEQUENCE = 99999
LAND_ONLY_SUFFIX = "00000000"

#: First two digits of GB/T 2260 province-level codes (incl. 71 Taiwan, 81 Hong Kong, 82 Macao).
_PROVINCE_RANGES = ((11, 15), (21, 23), (31, 37), (41, 46), (50, 54), (61, 65), (71, 71), (81, 82))
PROVINCE_CODES: frozenset[str] = frozenset(
    str(n) for low, high in _PROVINCE_RANGES for n in range(low, high + 1)
)

#: Province-level codes whose county codes have no prefecture level (e.g. 820001 花地玛堂区).
_NO_PREFECTURE_PROVINCES = frozenset(["81", "82"])

_DIGITS = frozenset("0123456789")


# ------------------------------------------------------------------ parts of a code
def county_of(code: str) -> str:
    """县级行政区划代码 (the shard key) of a parcel, building or unit code: chars 1-6."""
    return code[:COUNTY_CODE_LENGTH]


def parcel_code_of(code: str) -> str:
    """宗地代码 of a building or unit code: chars 1-19."""
    return code[:PARCEL_CODE_LENGTH]


def building_code_of(unit_code: str) -> str:
    """自然幢号 of a house unit code (fixture char F): chars 1-24."""
    return unit_code[:BUILDING_CODE_LENGTH]


def land_code_of(code: str) -> str:
    """The land-only unit code (…W00000000) of the parcel a parcel, building or unit code is on:
    where land use rights are registered."""
    return code[:PARCEL_CODE_LENGTH] + "W" + LAND_ONLY_SUFFIX


def sequence_prefix_of(parcel_code: str) -> str:
    """Zone + 宗地特征码 (chars 1-14): the codes sharing it number their sequences together."""
    return parcel_code[:ZONE_LENGTH + 2]


def is_unit_code_with_fixture(code: str, fixture: str) -> bool:
    """A 28-char unit code whose 定着物特征码 (char 20) is ``fixture`` (F building, W land)."""
    return len(code) == UNIT_CODE_LENGTH and code[PARCEL_CODE_LENGTH] == fixture


def county_sql(expr: str) -> str:
    """SQL: the county of the code ``expr`` (a column expression, never request input)."""
    return f"left({expr}, {COUNTY_CODE_LENGTH})"


class CodeError(InvalidInput, ValueError):
    """A broken code rule: stable ``code``, 1-based ``position`` (or None), bilingual message.

    ``message`` is "Chinese / English"; ``message_zh`` and ``message_en`` hold the halves.
    """

    def __init__(self, code: str, message_zh: str, message_en: str, position: int | None = None):
        super().__init__(code, f"{message_zh} / {message_en}", position=position)
        self.position = position
        self.message_zh = message_zh
        self.message_en = message_en


def _is_digits(s: str) -> bool:
    return bool(s) and all(c in _DIGITS for c in s)


def _first_non_digit(s: str, start: int) -> int:
    """1-based position of the first non-digit of ``s`` (which begins at position ``start``)."""
    for i, c in enumerate(s):
        if c not in _DIGITS:
            return start + i
    return start


def county_code_problem(county: str) -> tuple[int, str, str] | None:
    """Structural check of a 6-digit county code; returns (position, zh, en) or None if valid.

    This is a structural check only, NOT a lookup in the full GB/T 2260 table: it requires
    six ASCII digits, a province-level prefix from :data:`PROVINCE_CODES`, a prefecture part
    (digits 3-4) other than "00" and a county part (digits 5-6) other than "00".  Codes of
    county-level units administered directly by a province (prefecture part "90", e.g.
    4190xx, 4290xx, 4690xx, 6590xx) are valid, and so are Hong Kong / Macao district codes
    whose prefecture part is "00" (8100xx, 8200xx).  A well-formed but non-existent code
    such as 110199 therefore passes.
    """
    if len(county) != 6 or not _is_digits(county):
        pos = _first_non_digit(county, 1) if len(county) == 6 else 1
        return pos, "第1-6位县级行政区划代码应为6位数字", "chars 1-6 (county code) must be 6 digits"
    if county[:2] not in PROVINCE_CODES:
        return (
            1,
            f"第1-2位省级代码{county[:2]}不是有效的GB/T 2260省级行政区划代码",
            f"chars 1-2 ({county[:2]}) are not a valid GB/T 2260 province code",
        )
    if county[2:4] == "00" and county[:2] not in _NO_PREFECTURE_PROVINCES:
        return 3, "第3-4位地市级代码不能为00", "chars 3-4 (prefecture part) must not be 00"
    if county[4:6] == "00":
        return 5, "第5-6位县级代码不能为00", "chars 5-6 (county part) must not be 00"
    return None


def is_valid_county_code(county: str) -> bool:
    """True if ``county`` passes the structural check of :func:`county_code_problem`."""
    return county_code_problem(county) is None


def _or_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _letter_error(
    prefix: str, c: str, pos: int, valid: frozenset[str], code: str, zh: str, en: str
) -> CodeError | None:
    if c in valid:
        return None
    allowed = "/".join(sorted(valid))
    if c.upper() in valid:
        return CodeError(
            f"{prefix}_LOWERCASE",
            f"第{pos}位{zh}应为大写字母{c.upper()}",
            f"char {pos} ({en}) must be the uppercase letter {c.upper()}",
            pos,
        )
    return CodeError(
        f"{prefix}_{code}",
        f"第{pos}位{zh}应为{allowed}",
        f"char {pos} ({en}) must be {_or_list(sorted(valid))}",
        pos,
    )


def _digits_error(
    prefix: str, name: str, segment: str, start: int, zh: str, en: str
) -> CodeError | None:
    if _is_digits(segment):
        return None
    end = start + len(segment) - 1
    return CodeError(
        f"{prefix}_{name}",
        f"第{start}-{end}位{zh}应为{len(segment)}位数字",
        f"chars {start}-{end} ({en}) must be {len(segment)} digits",
        _first_non_digit(segment, start),
    )


def _parcel_errors(s: str, prefix: str) -> list[CodeError]:
    """All problems in the first 19 chars of ``s`` (length already checked)."""
    found: list[CodeError | None] = []
    problem = county_code_problem(s[0:6])
    if problem is not None:
        pos, zh, en = problem
        found.append(CodeError(f"{prefix}_COUNTY", zh, en, pos))
    own, right = s[12], s[13]
    found += [
        _digits_error(prefix, "DISTRICT", s[6:9], 7, "地籍区代码", "cadastral district"),
        _digits_error(prefix, "SUBDISTRICT", s[9:12], 10, "地籍子区代码", "cadastral subdistrict"),
        _letter_error(
            prefix, own, 13, OWNERSHIP_CHARS, "OWNERSHIP_CHAR", "宗地特征码", "ownership"
        ),
        _letter_error(prefix, right, 14, RIGHT_CHARS, "RIGHT_CHAR", "宗地特征码", "right type"),
    ]
    if own in OWNERSHIP_CHARS and right in COLLECTIVE_ONLY_RIGHT_CHARS and own != "J":
        found.append(
            CodeError(
                f"{prefix}_RIGHT_NEEDS_COLLECTIVE",
                f"第14位宗地特征码{right}仅用于集体所有(J)宗地，第13位为{own}",
                f"char 14 right type {right} requires collective ownership J at char 13, got {own}",
                14,
            )
        )
    seq = s[14:19]
    found.append(_digits_error(prefix, "SEQUENCE", seq, 15, "宗地顺序号", "parcel sequence"))
    if seq == "00000":
        found.append(
            CodeError(
                f"{prefix}_SEQUENCE",
                "第15-19位宗地顺序号应为00001-99999，不能为00000",
                "chars 15-19 (parcel sequence) must be 00001-99999, not 00000",
                15,
            )
        )
    return [e for e in found if e is not None]


def _length_error(prefix: str, s: object, expected: int, name_zh: str, name_en: str) -> CodeError:
    got = str(len(s)) if isinstance(s, str) else type(s).__name__
    return CodeError(
        f"{prefix}_LENGTH",
        f"{name_zh}应为{expected}位，实际为{got}",
        f"{name_en} must be {expected} characters, got {got}",
    )


def validate_parcel_code(s: str) -> list[CodeError]:
    """Every problem of a 19-char parcel code (empty list when valid)."""
    if not isinstance(s, str) or len(s) != PARCEL_CODE_LENGTH:
        return [_length_error("PARCEL_CODE", s, PARCEL_CODE_LENGTH, "宗地代码", "parcel code")]
    return _parcel_errors(s, "PARCEL_CODE")


def _fixture_number_error(fixture: str, number: str) -> CodeError | None:
    """Rules tying the fixture char (pos 20) to the fixture unit number (pos 21-28)."""
    if not _is_digits(number):
        return _digits_error(
            "UNIT_CODE", "UNIT_NUMBER", number, 21, "定着物单元编号", "fixture unit number"
        )
    if fixture == "W" and number != LAND_ONLY_SUFFIX:
        return CodeError(
            "UNIT_CODE_LAND_ONLY_SUFFIX",
            "定着物特征码为W(无定着物)时第21-28位应为00000000",
            "fixture char W (no fixture) requires chars 21-28 to be 00000000",
            21,
        )
    if fixture == "F" and (number[:4] == "0000" or number[4:] == "0000"):
        return CodeError(
            "UNIT_CODE_UNIT_NUMBER",
            "定着物特征码为F(房屋)时幢号(第21-24位)和户号(第25-28位)应为0001-9999",
            "fixture char F requires building no. (chars 21-24) and unit no. (chars 25-28)"
            " in 0001-9999",
            21 if number[:4] == "0000" else 25,
        )
    if fixture in ("L", "Q") and number == LAND_ONLY_SUFFIX:
        return CodeError(
            "UNIT_CODE_UNIT_NUMBER",
            f"定着物特征码为{fixture}时定着物单元编号不能为00000000(仅用于无定着物W)",
            f"fixture char {fixture} requires a non-zero fixture unit number"
            " (00000000 is for W only)",
            21,
        )
    return None


def validate_unit_code(s: str) -> list[CodeError]:
    """Every problem of a 28-char unit code (empty list when valid), ordered by position.

    A wrong length is reported alone, since positions are then meaningless.
    """
    if not isinstance(s, str) or len(s) != UNIT_CODE_LENGTH:
        return [_length_error("UNIT_CODE", s, UNIT_CODE_LENGTH, "不动产单元代码", "unit code")]
    errors = _parcel_errors(s, "UNIT_CODE")
    fixture, number = s[19], s[20:28]
    fixture_char_error = _letter_error(
        "UNIT_CODE", fixture, 20, FIXTURE_CHARS, "FIXTURE_CHAR", "定着物特征码", "fixture"
    )
    errors += [e for e in (fixture_char_error, _fixture_number_error(fixture, number)) if e]
    errors.sort(key=lambda e: e.position or 0)
    return errors


def _raise_first(errors: list[CodeError]) -> None:
    if errors:
        raise errors[0]


def check_int(value: object, low: int, high: int, code: str, zh: str, en: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CodeError(
            code,
            f"{zh}应为{low}-{high}的整数，实际为{value!r}",
            f"{en} must be an integer {low}-{high}, got {value!r}",
        )
    return value


@dataclass(frozen=True, slots=True)
class ParcelCode:
    """A 19-char parcel code (宗地代码); validated on construction."""

    county: str
    cadastral_district: str
    cadastral_subdistrict: str
    ownership_char: str
    right_char: str
    sequence: int

    def __post_init__(self) -> None:
        seq, high = self.sequence, MAX_PARCEL_SEQUENCE
        check_int(seq, 1, high, "PARCEL_CODE_SEQUENCE", "宗地顺序号", "parcel sequence")
        fields = (self.county, self.cadastral_district, self.cadastral_subdistrict)
        if not all(isinstance(v, str) for v in (*fields, self.ownership_char, self.right_char)):
            raise TypeError("ParcelCode text fields must be str")
        _raise_first(validate_parcel_code(str(self)))

    @classmethod
    def parse(cls, s: str) -> ParcelCode:
        """Parse a 19-char parcel code; raises the first :class:`CodeError` found."""
        _raise_first(validate_parcel_code(s))
        return cls(s[0:6], s[6:9], s[9:12], s[12], s[13], int(s[14:19]))

    def __str__(self) -> str:
        return (
            f"{self.county}{self.cadastral_district}{self.cadastral_subdistrict}"
            f"{self.ownership_char}{self.right_char}{self.sequence:05d}"
        )

    @property
    def feature_code(self) -> str:
        """The two-letter 宗地特征码 (ownership + right), e.g. "GB"."""
        return self.ownership_char + self.right_char

    @property
    def cadastral_zone(self) -> str:
        """County + 地籍区 + 地籍子区 (first 12 chars), the scope of parcel sequences."""
        return f"{self.county}{self.cadastral_district}{self.cadastral_subdistrict}"

    def with_sequence(self, sequence: int) -> ParcelCode:
        """Same zone and feature code with another sequence number."""
        return replace(self, sequence=sequence)


@dataclass(frozen=True, slots=True)
class UnitCode:
    """A 28-char real-estate unit code (不动产单元代码); validated on construction.

    For fixture char F, ``building_no`` is 幢号 and ``unit_no`` is 户号 (both 1-9999).  For W
    both are 0.  For L/Q the 8-digit fixture unit number is split the same way (4 + 4).
    """

    parcel: ParcelCode
    fixture_char: str
    building_no: int
    unit_no: int

    def __post_init__(self) -> None:
        if not isinstance(self.parcel, ParcelCode):
            raise TypeError(f"parcel must be a ParcelCode, got {type(self.parcel).__name__}")
        check_int(
            self.building_no, 0, MAX_BUILDING_NO, "UNIT_CODE_UNIT_NUMBER", "幢号", "building number"
        )
        check_int(self.unit_no, 0, MAX_UNIT_NO, "UNIT_CODE_UNIT_NUMBER", "户号", "unit number")
        if not isinstance(self.fixture_char, str) or len(self.fixture_char) != 1:
            raise CodeError(
                "UNIT_CODE_FIXTURE_CHAR",
                "定着物特征码应为1个字符",
                "fixture char must be a single character",
                20,
            )
        _raise_first(validate_unit_code(str(self)))

    @classmethod
    def parse(cls, s: str) -> UnitCode:
        """Parse a 28-char unit code; raises the first :class:`CodeError` found."""
        _raise_first(validate_unit_code(s))
        parcel = ParcelCode(s[0:6], s[6:9], s[9:12], s[12], s[13], int(s[14:19]))
        return cls(parcel, s[19], int(s[20:24]), int(s[24:28]))

    @classmethod
    def build(cls, parcel: ParcelCode, building_no: int, unit_no: int) -> UnitCode:
        """A house unit (fixture char F) with 幢号 ``building_no`` and 户号 ``unit_no``."""
        return cls(parcel, "F", building_no, unit_no)

    @classmethod
    def land_only(cls, parcel: ParcelCode) -> UnitCode:
        """The land-only unit of a parcel (W00000000)."""
        return cls(parcel, "W", 0, 0)

    def __str__(self) -> str:
        return f"{self.parcel}{self.fixture_char}{self.building_no:04d}{self.unit_no:04d}"

    @property
    def parcel_code(self) -> str:
        """The 19-char 宗地代码."""
        return str(self.parcel)

    @property
    def fixture_number(self) -> str:
        """The 8-digit 定着物单元编号 (chars 21-28)."""
        return f"{self.building_no:04d}{self.unit_no:04d}"

    @property
    def is_land_only(self) -> bool:
        return self.fixture_char == "W"

    @property
    def is_multi_building(self) -> bool:
        """True for F9999xxxx: several buildings of the parcel registered as one unit."""
        return self.fixture_char == "F" and self.building_no == MULTI_BUILDING_NO

    @property
    def building_code(self) -> str:
        """24-char 自然幢号 (ZRZH) = 宗地代码 + 'F' + 4-digit 幢号; only for F units."""
        if self.fixture_char != "F":
            raise CodeError(
                "UNIT_CODE_NOT_BUILDING",
                f"定着物特征码为{self.fixture_char}的单元没有自然幢号",
                f"a unit with fixture char {self.fixture_char} has no building code",
                20,
            )
        return f"{self.parcel}F{self.building_no:04d}"

