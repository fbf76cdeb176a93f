"""The rule that keeps a full import from wiping the view, and its setting."""

from __future__ import annotations

import pytest
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.engine.config import load_config
from ecmahost.engine.workers.removals import refusal, removal_limit


@pytest.mark.parametrize(
    ("seen", "removals", "total", "configured", "refused"),
    [
        (100, 0, 100, None, None),  # nothing to remove
        (0, 0, 0, None, None),  # an empty target and an empty space
        (0, 3, 3, None, "empty"),  # an emptied target, however small the space
        (0, 500, 500, None, "empty"),
        (90, 10, 100, None, None),  # at least 10 may go
        (89, 11, 100, None, "11 of 100"),
        (900, 100, 1000, None, None),  # 10 %
        (899, 101, 1000, None, "101 of 1000"),
        (999, 1, 1000, 0, "more than the 0"),  # 0: every removal needs confirming
        (500, 500, 1000, 500, None),  # an explicit count replaces the default
        (499, 501, 1000, 500, "501 of 1000"),
    ],
)
def test_refusal(
    seen: int, removals: int, total: int, configured: int | None, refused: str | None
) -> None:
    reason = refusal(seen, removals, total, configured)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason


@pytest.mark.parametrize(
    ("total", "configured", "limit"),
    [
        (0, None, 10),
        (99, None, 10),
        (100, None, 10),
        (250, None, 25),
        (10_000, None, 1000),
        (10_000, 7, 7),
        (5, 0, 0),
    ],
)
def test_removal_limit(total: int, configured: int | None, limit: int) -> None:
    assert removal_limit(total, configured) == limit


TOML = """
[connectors.CSV]
type = "memory"
token = "env:TOKEN_FOR_TESTS"
{line}
"""


@pytest.mark.parametrize("value", ['"10%"', "-1", "2.5", "true"])
def test_a_bad_import_max_removals_names_the_key(
    value: str, tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN_FOR_TESTS", "a-token-long-enough")
    path = tmp_path / "ecmahost.toml"  # type: ignore[operator]
    path.write_text(TOML.format(line=f"import_max_removals = {value}"), encoding="utf-8")

    with pytest.raises(ConfigError, match=r"connectors\.CSV\.import_max_removals: must be a whole"):
        load_config(path)


def test_import_max_removals_is_optional(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN_FOR_TESTS", "a-token-long-enough")
    path = tmp_path / "ecmahost.toml"  # type: ignore[operator]
    path.write_text(TOML.format(line="import_max_removals = 25"), encoding="utf-8")
    assert load_config(path).connector("CSV").import_max_removals == 25
    path.write_text(TOML.format(line=""), encoding="utf-8")
    assert load_config(path).connector("CSV").import_max_removals is None
