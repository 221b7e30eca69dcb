"""Parcel / unit code parsing, validation and change rules (GB/T 37346). Pure Python."""

from __future__ import annotations

import dataclasses

import pytest

from cadastre.codes import (
    CodeError,
    ParcelCode,
    UnitCode,
    county_code_problem,
    is_valid_county_code,
    validate_parcel_code,
    validate_unit_code,
)
from cadastre.errors import InvalidInput
from cadastre.register.numbering import next_building_no, next_parcel_sequence, next_unit_no

VALID_UNIT_CODES = [
    "320902004004GB00018F00010003",
    "330110119001GB04246F00080003",
    "340102201001GB00005F99990001",
    "320802006001GB00001W00000000",
    "340123002004JC00007F00020001",
    "340123002004JA00001W00000000",
    "659001001001ZY00002L00000001",
]


def _codes(errors: list[CodeError]) -> list[str]:
    return [e.code for e in errors]


def _raises(code_str: str, expected: str, position: int | None = None) -> CodeError:
    with pytest.raises(CodeError) as info:
        UnitCode.parse(code_str)
    assert info.value.code == expected
    if position is not None:
        assert info.value.position == position
    return info.value


@pytest.mark.parametrize("code_str", VALID_UNIT_CODES)
def test_valid_codes_round_trip(code_str: str) -> None:
    assert validate_unit_code(code_str) == []
    unit = UnitCode.parse(code_str)
    assert str(unit) == code_str
    assert UnitCode.parse(str(unit)) == unit
    assert str(ParcelCode.parse(code_str[:19])) == code_str[:19]


def test_fields_of_standard_example() -> None:
    unit = UnitCode.parse("320902004004GB00018F00010003")
    assert unit.parcel == ParcelCode("320902", "004", "004", "G", "B", 18)
    assert (unit.fixture_char, unit.building_no, unit.unit_no) == ("F", 1, 3)
    assert unit.parcel_code == "320902004004GB00018"
    assert unit.parcel.feature_code == "GB"
    assert unit.parcel.cadastral_zone == "320902004004"
    assert unit.fixture_number == "00010003"
    assert unit.building_code == "320902004004GB00018F0001"
    assert len(unit.building_code) == 24
    assert not unit.is_land_only and not unit.is_multi_building


def test_multi_building_unit() -> None:
    unit = UnitCode.parse("340102201001GB00005F99990001")
    assert unit.is_multi_building
    assert unit.building_no == 9999 and unit.unit_no == 1


def test_builders() -> None:
    parcel = ParcelCode.parse("330110119001GB04246")
    assert str(UnitCode.build(parcel, 8, 3)) == "330110119001GB04246F00080003"
    land = UnitCode.land_only(parcel)
    assert str(land) == "330110119001GB04246W00000000"
    assert land.is_land_only
    with pytest.raises(CodeError) as info:
        _ = land.building_code
    assert info.value.code == "UNIT_CODE_NOT_BUILDING"
    assert str(parcel.with_sequence(4247)) == "330110119001GB04247"
    with pytest.raises(CodeError) as info:
        UnitCode.build(parcel, 0, 1)
    assert info.value.code == "UNIT_CODE_UNIT_NUMBER"
    with pytest.raises(CodeError) as info:
        UnitCode.build(parcel, 1, 10000)
    assert info.value.code == "UNIT_CODE_UNIT_NUMBER"


def test_dataclasses_are_frozen_and_validated() -> None:
    parcel = ParcelCode.parse("320902004004GB00018")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parcel.sequence = 2  # type: ignore[misc]
    with pytest.raises(CodeError) as info:
        ParcelCode("320902", "004", "004", "G", "A", 1)
    assert info.value.code == "PARCEL_CODE_RIGHT_NEEDS_COLLECTIVE"
    with pytest.raises(CodeError) as info:
        ParcelCode("320902", "004", "004", "G", "B", 0)
    assert info.value.code == "PARCEL_CODE_SEQUENCE"
    with pytest.raises(CodeError) as info:
        ParcelCode("320902", "004", "004", "G", "B", 100000)
    assert info.value.code == "PARCEL_CODE_SEQUENCE"
    with pytest.raises(CodeError) as info:
        UnitCode(parcel, "W", 1, 0)
    assert info.value.code == "UNIT_CODE_LAND_ONLY_SUFFIX"


@pytest.mark.parametrize(
    ("code_str", "expected", "position"),
    [
        ("320902004004GB00018F0001000", "UNIT_CODE_LENGTH", None),
        ("320902004004GB00018F000100031", "UNIT_CODE_LENGTH", None),
        ("", "UNIT_CODE_LENGTH", None),
        ("320902004004GB00018", "UNIT_CODE_LENGTH", None),
        ("320902004004gB00018F00010003", "UNIT_CODE_LOWERCASE", 13),
        ("320902004004Gb00018F00010003", "UNIT_CODE_LOWERCASE", 14),
        ("320902004004GB00018f00010003", "UNIT_CODE_LOWERCASE", 20),
        ("320902004004QB00018F00010003", "UNIT_CODE_OWNERSHIP_CHAR", 13),
        ("3209020040041B00018F00010003", "UNIT_CODE_OWNERSHIP_CHAR", 13),
        ("320902004004GK00018F00010003", "UNIT_CODE_RIGHT_CHAR", 14),
        ("320902004004GA00018W00000000", "UNIT_CODE_RIGHT_NEEDS_COLLECTIVE", 14),
        ("320902004004GC00018F00010003", "UNIT_CODE_RIGHT_NEEDS_COLLECTIVE", 14),
        ("320902004004ZC00018F00010003", "UNIT_CODE_RIGHT_NEEDS_COLLECTIVE", 14),
        ("320902004004GB00000F00010003", "UNIT_CODE_SEQUENCE", 15),
        ("320902004004GB0001AF00010003", "UNIT_CODE_SEQUENCE", 19),
        ("320902004004GB00018X00010003", "UNIT_CODE_FIXTURE_CHAR", 20),
        ("320902004004GB000180000100031", "UNIT_CODE_LENGTH", None),
        ("320902004004GB00018W00010000", "UNIT_CODE_LAND_ONLY_SUFFIX", 21),
        ("320902004004GB00018W00000001", "UNIT_CODE_LAND_ONLY_SUFFIX", 21),
        ("320902004004GB00018F00010000", "UNIT_CODE_UNIT_NUMBER", 25),
        ("320902004004GB00018F00000003", "UNIT_CODE_UNIT_NUMBER", 21),
        ("320902004004GB00018F00000000", "UNIT_CODE_UNIT_NUMBER", 21),
        ("320902004004GB00018L00000000", "UNIT_CODE_UNIT_NUMBER", 21),
        ("320902004004GB00018F0001000A", "UNIT_CODE_UNIT_NUMBER", 28),
        ("320902A04004GB00018F00010003", "UNIT_CODE_DISTRICT", 7),
        ("320902004 04GB00018F00010003", "UNIT_CODE_SUBDISTRICT", 10),
        ("990902004004GB00018F00010003", "UNIT_CODE_COUNTY", 1),
        ("320002004004GB00018F00010003", "UNIT_CODE_COUNTY", 3),
        ("320900004004GB00018F00010003", "UNIT_CODE_COUNTY", 5),
        ("32O902004004GB00018F00010003", "UNIT_CODE_COUNTY", 3),
        ("３20902004004GB00018F00010003", "UNIT_CODE_COUNTY", 1),
    ],
)
def test_invalid_unit_codes(code_str: str, expected: str, position: int | None) -> None:
    err = _raises(code_str, expected, position)
    assert isinstance(err, ValueError)
    assert expected in _codes(validate_unit_code(code_str))


def test_error_message_is_bilingual() -> None:
    err = _raises("320902004004QB00018F00010003", "UNIT_CODE_OWNERSHIP_CHAR", 13)
    assert err.message == "第13位宗地特征码应为G/J/Z / char 13 (ownership) must be G, J or Z"
    assert err.message in str(err)
    assert isinstance(err, InvalidInput) and isinstance(err, ValueError)
    assert err.message_zh.startswith("第13位")
    assert err.message_en.startswith("char 13")
    length = _raises("123", "UNIT_CODE_LENGTH")
    assert "28" in length.message_zh and "got 3" in length.message_en


def test_non_string_input() -> None:
    assert _codes(validate_unit_code(None)) == ["UNIT_CODE_LENGTH"]  # type: ignore[arg-type]
    assert _codes(validate_parcel_code(12345)) == ["PARCEL_CODE_LENGTH"]  # type: ignore[arg-type]


def test_validate_unit_code_returns_all_problems() -> None:
    errors = validate_unit_code("990000A04004QK00000X00010003")
    assert _codes(errors) == [
        "UNIT_CODE_COUNTY",
        "UNIT_CODE_DISTRICT",
        "UNIT_CODE_OWNERSHIP_CHAR",
        "UNIT_CODE_RIGHT_CHAR",
        "UNIT_CODE_SEQUENCE",
        "UNIT_CODE_FIXTURE_CHAR",
    ]
    assert [e.position for e in errors] == [1, 7, 13, 14, 15, 20]
    errors = validate_unit_code("320902004004GC00000W12345678")
    assert _codes(errors) == [
        "UNIT_CODE_RIGHT_NEEDS_COLLECTIVE",
        "UNIT_CODE_SEQUENCE",
        "UNIT_CODE_LAND_ONLY_SUFFIX",
    ]
    # parse raises the first of them
    _raises("320902004004GC00000W12345678", "UNIT_CODE_RIGHT_NEEDS_COLLECTIVE", 14)


@pytest.mark.parametrize(
    ("code_str", "expected"),
    [
        ("32090200400", "PARCEL_CODE_LENGTH"),
        ("320902004004GB00018F00010003", "PARCEL_CODE_LENGTH"),
        ("320902004004gB00018", "PARCEL_CODE_LOWERCASE"),
        ("320902004004QB00018", "PARCEL_CODE_OWNERSHIP_CHAR"),
        ("320902004004GZ00018", "PARCEL_CODE_RIGHT_CHAR"),
        ("320902004004GA00018", "PARCEL_CODE_RIGHT_NEEDS_COLLECTIVE"),
        ("320902004004GB00000", "PARCEL_CODE_SEQUENCE"),
        ("100902004004GB00018", "PARCEL_CODE_COUNTY"),
    ],
)
def test_invalid_parcel_codes(code_str: str, expected: str) -> None:
    with pytest.raises(CodeError) as info:
        ParcelCode.parse(code_str)
    assert info.value.code == expected


def test_all_right_chars_with_collective_ownership() -> None:
    for right in "ABSXCDEFGHWY":
        assert validate_parcel_code(f"340123002004J{right}00011") == []
    for right in "BSXDEFGHWY":
        assert validate_parcel_code(f"340123002004G{right}00011") == []


@pytest.mark.parametrize(
    ("county", "valid"),
    [
        ("110105", True),
        ("320902", True),
        ("419001", True),  # 济源 (province-administered, prefecture part 90)
        ("429004", True),
        ("469001", True),
        ("659001", True),
        ("540102", True),
        ("810001", True),  # Hong Kong district, no prefecture level
        ("820001", True),
        ("810000", False),
        ("100105", False),  # 10 is not a province
        ("160105", False),
        ("240105", False),
        ("380105", False),
        ("470105", False),
        ("550105", False),
        ("660105", False),
        ("720105", False),
        ("830105", False),
        ("320000", False),  # province itself
        ("320900", False),  # prefecture itself
        ("320012", False),
        ("32090", False),
        ("32090a", False),
    ],
)
def test_county_structure(county: str, valid: bool) -> None:
    assert is_valid_county_code(county) is valid
    assert (county_code_problem(county) is None) is valid


def test_next_building_no() -> None:
    assert next_building_no([]) == 1
    assert next_building_no([1, 2, 3]) == 4
    assert next_building_no([5, 2]) == 6  # never fills gaps (no reuse)
    assert next_building_no([1, 9999]) == 2  # reserved 9999 does not count as max
    assert next_building_no([9997]) == 9998
    assert next_building_no(iter([3, 1])) == 4
    with pytest.raises(CodeError) as info:
        next_building_no([9998])
    assert info.value.code == "BUILDING_NO_EXHAUSTED"
    with pytest.raises(CodeError) as info:
        next_building_no([9998, 9999])
    assert info.value.code == "BUILDING_NO_EXHAUSTED"
    with pytest.raises(CodeError) as info:
        next_building_no([0])
    assert info.value.code == "BUILDING_NO_RANGE"


def test_next_building_no_never_returns_reserved() -> None:
    used = list(range(1, 9990))
    for _ in range(9):
        n = next_building_no(used)
        assert n != 9999
        used.append(n)
    assert used == list(range(1, 9999))
    with pytest.raises(CodeError):
        next_building_no(used)


def test_next_unit_no() -> None:
    assert next_unit_no([]) == 1
    assert next_unit_no([1, 3]) == 4
    assert next_unit_no([9998]) == 9999
    with pytest.raises(CodeError) as info:
        next_unit_no([9999])
    assert info.value.code == "UNIT_NO_EXHAUSTED"
    with pytest.raises(CodeError) as info:
        next_unit_no([10000])
    assert info.value.code == "UNIT_NO_RANGE"


def test_next_parcel_sequence() -> None:
    assert next_parcel_sequence([]) == 1
    assert next_parcel_sequence([18, 4, 11]) == 19
    assert next_parcel_sequence([99998]) == 99999
    with pytest.raises(CodeError) as info:
        next_parcel_sequence([99999])
    assert info.value.code == "PARCEL_SEQUENCE_EXHAUSTED"
    with pytest.raises(CodeError) as info:
        next_parcel_sequence([True])
    assert info.value.code == "PARCEL_SEQUENCE_RANGE"
    parcel = ParcelCode.parse("340123002004GB00011")
    nxt = parcel.with_sequence(next_parcel_sequence([11, 19, 20]))
    assert str(nxt) == "340123002004GB00021"
