"""Resident ID numbers (GB 11643, ISO 7064 MOD 11-2). Pure Python."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from cadastre.access.idnumber import (
    IdNumberError,
    birth_date,
    build_id_number,
    check_char,
    gender,
    is_valid_id_number,
    normalize_id_number,
    validate_id_number,
)
from cadastre.codes import PROVINCE_CODES
from cadastre.errors import InvalidInput

TODAY = date(2024, 6, 1)
VALID = ["11010519491231002X", "110105195001010039"]


def _code(s: str, today: date = TODAY) -> str:
    with pytest.raises(IdNumberError) as info:
        validate_id_number(s, today=today)
    assert isinstance(info.value, ValueError)
    return info.value.code


@pytest.mark.parametrize("s", VALID)
def test_known_valid(s: str) -> None:
    validate_id_number(s, today=TODAY)
    validate_id_number(s)
    assert is_valid_id_number(s)
    assert check_char(s[:17]) == s[17]


def test_check_char_values() -> None:
    assert check_char("11010519491231002") == "X"
    assert check_char("11010519500101003") == "9"
    with pytest.raises(IdNumberError) as info:
        check_char("1101051949123100")
    assert info.value.code == "ID_LENGTH"
    with pytest.raises(IdNumberError) as info:
        check_char("1101051949123100A")
    assert info.value.code == "ID_CHARS"
    assert info.value.position == 17


def test_gender_and_birth_date() -> None:
    assert gender("11010519491231002X") == "F"  # sequence 002
    assert gender("110105195001010039") == "M"  # sequence 003
    assert birth_date("11010519491231002X") == date(1949, 12, 31)
    with pytest.raises(IdNumberError):
        gender("110105195001010038")


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        ("", "ID_LENGTH"),
        ("11010519491231002", "ID_LENGTH"),
        ("11010519491231002X0", "ID_LENGTH"),
        ("110105491231002", "ID_LENGTH"),  # 15-digit first generation: not supported
        ("1101051949123100AX", "ID_CHARS"),
        ("11010519491231002x", "ID_CHARS"),  # lowercase x
        ("11010519491231002Y", "ID_CHARS"),
        ("１10105195001010039", "ID_CHARS"),  # full-width digit
        ("10010519500101003X", "ID_REGION"),
        ("99010519500101003X", "ID_REGION"),
        ("00010519500101003X", "ID_REGION"),
        ("110105195002300039", "ID_BIRTHDATE"),  # 30 Feb
        ("110105195013010039", "ID_BIRTHDATE"),  # month 13
        ("110105190002290039", "ID_BIRTHDATE"),  # 1900 is not a leap year
        ("110105189912310039", "ID_BIRTHDATE"),  # before 1900
        ("110105203001010039", "ID_BIRTHDATE"),  # future
        ("110105195001010038", "ID_CHECKSUM"),
        ("110105194912310020", "ID_CHECKSUM"),
    ],
)
def test_invalid(s: str, expected: str) -> None:
    assert _code(s) == expected
    assert not is_valid_id_number(s, today=TODAY)


def test_non_string() -> None:
    assert _code(None) == "ID_LENGTH"  # type: ignore[arg-type]


def test_leap_day_and_today_boundary() -> None:
    leap = build_id_number("110105", date(2000, 2, 29), 1, today=TODAY)
    validate_id_number(leap, today=TODAY)
    born_today = build_id_number("110105", TODAY, 1, today=TODAY)
    validate_id_number(born_today, today=TODAY)
    assert _code(born_today, today=TODAY - timedelta(days=1)) == "ID_BIRTHDATE"


def test_messages_are_bilingual() -> None:
    with pytest.raises(IdNumberError) as info:
        validate_id_number("110105195001010038", today=TODAY)
    err = info.value
    assert err.position == 18
    assert err.message == f"{err.message_zh} / {err.message_en}"
    assert "校验码" in err.message_zh and "check char" in err.message_en
    assert isinstance(err, InvalidInput)


@pytest.mark.parametrize(
    "s",
    ["110105195001010038", "110105195002300039", "990105195001010039", "110105203001010039"],
)
def test_messages_do_not_echo_personal_data(s: str) -> None:
    with pytest.raises(IdNumberError) as info:
        validate_id_number(s, today=TODAY)
    for part in (s, s[:6], s[6:14], s[14:17]):
        assert part not in str(info.value)


def test_normalize() -> None:
    assert normalize_id_number(" 11010519491231002x ") == "11010519491231002X"
    validate_id_number(normalize_id_number("11010519491231002x"), today=TODAY)


def test_single_digit_error_always_detected() -> None:
    s = "110105195001010039"
    for pos in range(6, 18):
        for d in "0123456789":
            if d == s[pos]:
                continue
            mutated = s[:pos] + d + s[pos + 1 :]
            if pos < 17:
                # a date change may already fail the birth date check
                assert not is_valid_id_number(mutated, today=TODAY)
            else:
                assert _code(mutated) == "ID_CHECKSUM"


def test_build_validate_round_trip_random() -> None:
    rng = random.Random(11643)
    provinces = sorted(PROVINCE_CODES)
    start = date(1900, 1, 1)
    span = (TODAY - start).days
    seen_x = 0
    for _ in range(1000):
        region = rng.choice(provinces) + f"{rng.randint(1, 99):02d}{rng.randint(1, 99):02d}"
        birth = start + timedelta(days=rng.randint(0, span))
        seq = rng.randint(0, 999)
        s = build_id_number(region, birth, seq, today=TODAY)
        assert len(s) == 18
        validate_id_number(s, today=TODAY)
        assert birth_date(s, today=TODAY) == birth
        assert gender(s, today=TODAY) == ("M" if seq % 2 else "F")
        seen_x += s.endswith("X")
        # any different check char must be rejected
        wrong = "0" if s[17] != "0" else "1"
        assert _code(s[:17] + wrong) == "ID_CHECKSUM"
    assert seen_x > 0


def test_taiwan_residence_permit_prefix() -> None:
    s = build_id_number("830000", date(1990, 5, 17), 21, today=TODAY)
    validate_id_number(s, today=TODAY)


@pytest.mark.parametrize(
    ("region", "birth", "seq", "expected"),
    [
        ("11010", date(1990, 1, 1), 1, "ID_REGION"),
        ("11010a", date(1990, 1, 1), 1, "ID_REGION"),
        ("990105", date(1990, 1, 1), 1, "ID_REGION"),
        ("110105", date(1899, 12, 31), 1, "ID_BIRTHDATE"),
        ("110105", date(2030, 1, 1), 1, "ID_BIRTHDATE"),
        ("110105", date(1990, 1, 1), 1000, "ID_SEQUENCE"),
        ("110105", date(1990, 1, 1), -1, "ID_SEQUENCE"),
    ],
)
def test_build_rejects(region: str, birth: date, seq: int, expected: str) -> None:
    with pytest.raises(IdNumberError) as info:
        build_id_number(region, birth, seq, today=TODAY)
    assert info.value.code == expected
