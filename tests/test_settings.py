"""Settings are checked at start: contradicting pairs and bad values are refused with a stable
code, unknown CADASTRE_* keys are reported by `cadastre settings` and `cadastre serve`."""

from __future__ import annotations

import pytest

from cadastre.settings import Settings, SettingsInvalid, known_env_keys, unknown_env_keys


def test_pool_min_above_pool_max_is_refused() -> None:
    with pytest.raises(SettingsInvalid) as exc:
        Settings(database={"pool_min": 20, "pool_max": 10})
    assert exc.value.code == "SETTINGS_INVALID"
    assert "CADASTRE_POOL_MIN" in exc.value.message and "CADASTRE_POOL_MAX" in exc.value.message


def test_owner_token_outliving_staff_tokens_is_refused() -> None:
    with pytest.raises(SettingsInvalid, match="CADASTRE_OWNER_TOKEN_TTL_MINUTES"):
        Settings(security={"owner_token_ttl_minutes": 60, "token_ttl_minutes": 30})


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CADASTRE_PORT", "eighty")
    with pytest.raises(SettingsInvalid, match="CADASTRE_PORT"):
        Settings()


def test_every_settings_variable_is_known(monkeypatch: pytest.MonkeyPatch) -> None:
    known = known_env_keys()
    for key in ("CADASTRE_DATABASE_URL", "DATABASE_URL", "CADASTRE_TILE_CACHE",
                "CADASTRE_QA_SAMPLE_FRACTION", "CADASTRE_LOGIN_MAX_FAILURES",
                "CADASTRE_VERIFY_WINDOW_MINUTES", "CADASTRE_POOL_MAX"):
        assert key in known, key
    assert "CADASTRE_URL" not in known and "CADASTRE_CACHE" not in known
    monkeypatch.setenv("CADASTRE_QA_SAMPLE_FRACTON", "0.1")   # typo
    monkeypatch.setenv("CADASTRE_QA_SAMPLE_FRACTION", "0.1")
    assert "CADASTRE_QA_SAMPLE_FRACTON" in unknown_env_keys()
    assert "CADASTRE_QA_SAMPLE_FRACTION" not in unknown_env_keys()
    assert Settings().qa.sample_fraction == 0.1


def test_pool_sizes_follow_the_machine_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CADASTRE_POOL_MIN", raising=False)   # (conftest sets both)
    monkeypatch.delenv("CADASTRE_POOL_MAX", raising=False)
    db = Settings().database
    assert db.pool_min is None and db.pool_max is None
    # two connections per core over all the worker processes, at least two each; fixed size
    assert db.pool_sizes(1, cores=2) == (4, 4)
    assert db.pool_sizes(2, cores=2) == (2, 2)
    assert db.pool_sizes(3, cores=8) == (6, 6)
    assert db.pool_sizes(4, cores=2) == (2, 2)
    assert db.pool_sizes(1, cores=64) == (10, 10)     # at most ten a process
    # what is set is kept; a maximum alone keeps a pool that may shrink to one
    assert Settings(database={"pool_max": 10}).database.pool_sizes(2, cores=2) == (1, 10)
    assert Settings(database={"pool_min": 6}).database.pool_sizes(2, cores=2) == (6, 6)
    assert Settings(database={"pool_min": 0, "pool_max": 3}).database.pool_sizes(1) == (0, 3)
