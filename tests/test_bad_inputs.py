"""The bad-input corpus (tests/data/bad, listed in EXPECTED.json).

Reader level: ``read_survey`` either raises :class:`SurveyFormatError` with exactly the expected
code, or returns a dataset carrying the expected issue code; no other exception type may escape.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cadastre.ingest import SurveyFormatError, read_survey

BAD = Path(__file__).parent / "data" / "bad"
EXPECTED: dict[str, dict[str, object]] = json.loads((BAD / "EXPECTED.json").read_text("utf-8"))


def test_corpus_is_complete() -> None:
    files = {p.name for p in BAD.iterdir() if p.name != "EXPECTED.json"}
    assert files == set(EXPECTED)
    assert len(files) >= 40
    for name, expectation in EXPECTED.items():
        assert ("error" in expectation) != ("issue" in expectation), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input_reader_level(name: str) -> None:
    expectation = EXPECTED[name]
    if name.endswith(".ifc") and expectation.get("error") not in ("FILE_TRUNCATED", None):
        pytest.importorskip("ifcopenshell")
    kwargs = dict(expectation.get("kwargs", {}))  # type: ignore[call-overload]
    try:
        dataset = read_survey(BAD / name, **kwargs)
    except SurveyFormatError as exc:
        assert exc.code == expectation.get("error"), f"{name}: {exc.code}: {exc.message}"
        assert " / " in exc.message  # bilingual
        return
    except Exception as exc:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{name}: {type(exc).__name__} escaped: {exc}")
    assert "issue" in expectation, f"{name}: expected {expectation['error']}, got a dataset"
    found = [i for i in dataset.issues if i.code == expectation["issue"]]
    assert found, f"{name}: issues were {dataset.issue_codes()}"
    assert all(" / " in i.message for i in found)
