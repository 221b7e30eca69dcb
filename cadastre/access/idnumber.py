"""18-digit resident identity numbers (公民身份号码, GB 11643-1999).

Layout: 6-digit address code + 8-digit birth date (YYYYMMDD) + 3-digit sequence (odd = male,
even = female) + 1 check char computed with ISO 7064 MOD 11-2 (``0``-``9`` or uppercase ``X``).

Validation is strict (no trimming, lowercase ``x`` rejected); use :func:`normalize_id_number`
first to accept user input with surrounding spaces or a lowercase ``x``.  The 15-digit
first-generation numbers are not supported.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from cadastre.codes import PROVINCE_CODES
from cadastre.errors import InvalidInput

ID_NUMBER_LENGTH = 18
WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"  # indexed by (weighted sum mod 11)
MIN_BIRTH_YEAR = 1900

#: Accepted first two digits: GB/T 2260 province codes plus 83, the prefix used in the
#: numbers of residence permits for Taiwan residents (港澳台居民居住证: 81/82/83).
ID_REGION_PREFIXES: frozenset[str] = PROVINCE_CODES | {"83"}

_DIGITS = frozenset("0123456789")


class IdNumberError(InvalidInput, ValueError):
    """An invalid ID number: stable ``code``, 1-based ``position`` (or None), bilingual message.

    Messages never echo the number or its parts (birth date, region), as they are personal data.
    """

    def __init__(self, code: str, message_zh: str, message_en: str, position: int | None = None):
        super().__init__(code, f"{message_zh} / {message_en}", position=position)
        self.position = position
        self.message_zh = message_zh
        self.message_en = message_en


def _digits_only(s: str) -> bool:
    return all(c in _DIGITS for c in s)


def check_char(first17: str) -> str:
    """The GB 11643 check char ('0'-'9' or 'X') for the first 17 digits."""
    if not isinstance(first17, str) or len(first17) != 17:
        raise IdNumberError(
            "ID_LENGTH",
            "计算校验码需要前17位数字",
            "the check char needs exactly the first 17 digits",
        )
    if not _digits_only(first17):
        pos = next(i for i, c in enumerate(first17, 1) if c not in _DIGITS)
        raise IdNumberError("ID_CHARS", f"第{pos}位应为数字", f"char {pos} must be a digit", pos)
    total = sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def normalize_id_number(s: str) -> str:
    """Strip surrounding whitespace and uppercase a trailing 'x'."""
    s = s.strip()
    return s[:-1] + "X" if s.endswith("x") else s


def _birth_date(digits8: str) -> date | None:
    try:
        return date(int(digits8[0:4]), int(digits8[4:6]), int(digits8[6:8]))
    except ValueError:
        return None


def _check_birth(birth: date, today: date) -> None:
    if birth.year < MIN_BIRTH_YEAR:
        zh, en = f"出生日期早于{MIN_BIRTH_YEAR}年", f"birth date is before {MIN_BIRTH_YEAR}"
        raise IdNumberError("ID_BIRTHDATE", zh, en, 7)
    if birth > today:
        raise IdNumberError("ID_BIRTHDATE", "出生日期晚于今天", "birth date is in the future", 7)


def _check_region(prefix2: str) -> None:
    if prefix2 not in ID_REGION_PREFIXES:
        zh, en = "第1-2位不是有效的省级行政区划代码", "chars 1-2 are not a valid province code"
        raise IdNumberError("ID_REGION", zh, en, 1)


def validate_id_number(s: str, *, today: date | None = None) -> None:
    """Raise :class:`IdNumberError` for the first problem of an 18-char ID number.

    Checks in order: ID_LENGTH, ID_CHARS (17 digits then a digit or uppercase X), ID_REGION
    (province prefix), ID_BIRTHDATE (real date, year >= 1900, not after ``today``, default
    the local date), ID_CHECKSUM.
    """
    if not isinstance(s, str) or len(s) != ID_NUMBER_LENGTH:
        got = str(len(s)) if isinstance(s, str) else type(s).__name__
        zh, en = f"身份证号码应为18位，实际为{got}", f"ID number must be 18 characters, got {got}"
        raise IdNumberError("ID_LENGTH", zh, en)
    for pos, c in enumerate(s[:17], 1):
        if c not in _DIGITS:
            raise IdNumberError(
                "ID_CHARS", f"第{pos}位应为数字", f"char {pos} must be a digit", pos
            )
    if s[17] not in _DIGITS and s[17] != "X":
        hint_zh, hint_en = ("（应为大写X）", " (use uppercase X)") if s[17] == "x" else ("", "")
        zh, en = f"第18位校验码应为数字或X{hint_zh}", f"char 18 must be a digit or X{hint_en}"
        raise IdNumberError("ID_CHARS", zh, en, 18)
    _check_region(s[:2])
    birth = _birth_date(s[6:14])
    if birth is None:
        zh, en = "第7-14位出生日期不是有效日期", "chars 7-14 (birth date) are not a valid date"
        raise IdNumberError("ID_BIRTHDATE", zh, en, 7)
    _check_birth(birth, today or date.today())
    if s[17] != check_char(s[:17]):
        zh, en = "第18位校验码不正确", "char 18 (check char) does not match the first 17 digits"
        raise IdNumberError("ID_CHECKSUM", zh, en, 18)


def is_valid_id_number(s: str, *, today: date | None = None) -> bool:
    try:
        validate_id_number(s, today=today)
    except IdNumberError:
        return False
    return True


def build_id_number(region6: str, birth: date, sequence3: int, *, today: date | None = None) -> str:
    """Assemble a valid ID number from address code, birth date and sequence (0-999)."""
    if not isinstance(region6, str) or len(region6) != 6 or not _digits_only(region6):
        raise IdNumberError("ID_REGION", "地址码应为6位数字", "region code must be 6 digits", 1)
    _check_region(region6[:2])
    if isinstance(sequence3, bool) or not isinstance(sequence3, int) or not 0 <= sequence3 <= 999:
        zh, en = "顺序码应为0-999的整数", "sequence must be an integer 0-999"
        raise IdNumberError("ID_SEQUENCE", zh, en, 15)
    _check_birth(birth, today or date.today())
    first17 = f"{region6}{birth.year:04d}{birth.month:02d}{birth.day:02d}{sequence3:03d}"
    return first17 + check_char(first17)


def birth_date(s: str, *, today: date | None = None) -> date:
    """The birth date of a valid ID number."""
    validate_id_number(s, today=today)
    return date(int(s[6:10]), int(s[10:12]), int(s[12:14]))


def gender(s: str, *, today: date | None = None) -> Literal["M", "F"]:
    """'M' when the 3-digit sequence (chars 15-17) is odd, 'F' when even."""
    validate_id_number(s, today=today)
    return "M" if int(s[14:17]) % 2 else "F"
