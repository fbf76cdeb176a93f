"""Each bad input a review found answered with a 500 (or quietly taken): now a 400
that names what is wrong, and the target file untouched."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import pytest
from ecmahost.engine.scim.http import clamp_detail

from tests.conftest import EXT
from tests.integration.csv_app import ADMIN_TOKEN, CsvApp, csv_app, user_body

__all__ = ["csv_app"]  # the fixture, imported to be found

BIG = 2**70
DEEP = b"[" * 100_000 + b"]" * 100_000


def _user(anchor: str = "new-1", **extension: Any) -> bytes:
    return json.dumps(user_body(anchor, **extension)).encode()


def _raw_user(anchor_json: str, employee_json: str = '""') -> bytes:
    """A user body with two values given as raw JSON text (for what json.dumps
    would never write)."""
    return (
        f'{{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "{EXT}": '
        f'{{"AzureObjectID": {anchor_json}, "EmployeeId": {employee_json}}}}}'
    ).encode()


def _search(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def _terms(count: int) -> str:
    joined = " and ".join(f'Title eq "t{i}"' for i in range(count // 2))
    return joined + " or " + " or ".join(f'DisplayName eq "d{i}"' for i in range(count // 2))


# (method, path, body, status, words the detail holds); ids say which finding.
CASES: list[Any] = [
    pytest.param("POST", "/Users", DEEP, 400, "JSON", id="deep-json-create"),
    pytest.param("POST", "/.search", DEEP, 400, "JSON", id="deep-json-search"),
    pytest.param("POST", "/admin/exports/replay", DEEP, 400, "JSON", id="deep-json-admin"),
    pytest.param(
        "POST",
        "/Users",
        b"[" * 65 + b"]" * 65,
        400,
        "deeper than 64",
        id="json-65-deep",
    ),
    pytest.param(
        "POST", "/Users", _raw_user('"a"', '"\\ud800"'), 400, "surrogate", id="surrogate-value"
    ),
    pytest.param("POST", "/Users", _raw_user('"\\ud800"'), 400, "surrogate", id="surrogate-anchor"),
    pytest.param(
        "GET",
        "/Users?filter=" + quote('Title eq "\\ud800"'),
        None,
        400,
        "surrogate",
        id="surrogate-filter",
    ),
    pytest.param(
        "POST",
        "/.search",
        _search(filter=_terms(1000)),
        400,
        "more than 100 terms",
        id="filter-1000-terms",
    ),
    pytest.param(
        "POST",
        "/.search",
        _search(filter=_terms(102)),
        400,
        "more than 100 terms",
        id="filter-101-terms",
    ),
    pytest.param(
        "POST",
        "/.search",
        _search(filter='Title eq "a"' + " )" * 1000),
        400,
        "more than 100 terms",
        id="filter-tokens-past-cap",
    ),
    pytest.param(
        "GET",
        "/Users?filter=" + quote(f"EmployeeId eq {BIG}"),
        None,
        400,
        "out of range",
        id="filter-int-2^70",
    ),
    pytest.param(
        "GET", f"/Users?startIndex={2**63}", None, 400, "startIndex", id="startindex-2^63-query"
    ),
    pytest.param(
        "POST",
        "/.search",
        _search(startIndex=2**63),
        400,
        "startIndex",
        id="startindex-2^63-search",
    ),
    pytest.param("POST", "/.search", _search(count=True), 400, "count", id="count-boolean"),
    pytest.param("POST", "/.search", _search(attributes=5), 400, "attributes", id="attributes-5"),
    pytest.param(
        "POST",
        "/.search",
        _search(excludedAttributes=5),
        400,
        "excludedAttributes",
        id="excluded-5",
    ),
    pytest.param(
        "POST", "/.search", _search(attributes=["a"] * 101), 400, "100 names", id="attributes-101"
    ),
    pytest.param(
        "GET", f"/admin/exports/{'9' * 26}", None, 400, "event id", id="admin-id-26-digits"
    ),
    pytest.param(
        "POST",
        "/admin/exports/discard",
        _search(ids=[10**25]),
        400,
        "ids",
        id="admin-ids-26-digits",
    ),
    pytest.param(
        "POST", "/admin/exports/discard", _search(ids=[-1]), 400, "ids", id="admin-ids-negative"
    ),
    pytest.param(
        "POST", "/admin/exports/discard", b'{"ids": [1e30]}', 400, "ids", id="admin-ids-1e30"
    ),
    pytest.param(
        "POST", "/admin/exports/replay", _search(ids=[True]), 400, "ids", id="admin-ids-true"
    ),
    pytest.param(
        "POST",
        "/admin/exports/discard",
        _search(ids=list(range(1, 1002))),
        400,
        "ids",
        id="admin-ids-1001",
    ),
    pytest.param("GET", "/admin/exports?limit=-1", None, 400, "limit", id="admin-limit-minus-1"),
    pytest.param("GET", "/admin/exports?limit=10001", None, 400, "limit", id="admin-limit-10001"),
    pytest.param("POST", "/Users", _raw_user("12345"), 400, "must be a string", id="anchor-number"),
    pytest.param("POST", "/Users", _raw_user("true"), 400, "must be a string", id="anchor-boolean"),
    pytest.param("POST", "/Users", _raw_user('"a"', "NaN"), 400, "not valid JSON", id="nan"),
    pytest.param(
        "POST", "/Users", _raw_user('"a"', "Infinity"), 400, "not valid JSON", id="infinity"
    ),
    pytest.param("POST", "/Users", _raw_user('"a"', "1e400"), 400, "not valid JSON", id="1e400"),
    pytest.param(
        "POST", "/Users", _raw_user('"a"', str(BIG)), 400, "outside 64 bits", id="integer-2^70"
    ),
    pytest.param(
        "POST",
        "/Users",
        _raw_user('"a"', str(-(2**63) - 1)),
        400,
        "outside 64 bits",
        id="integer-below-int64",
    ),
    pytest.param(
        "POST",
        "/Users",
        _raw_user('"a"', f'"{BIG}"'),
        400,
        "outside 64 bits",
        id="integer-text-2^70",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "words"), CASES)
async def test_bad_input_is_a_400_that_leaves_the_target_alone(
    csv_app: CsvApp, method: str, path: str, body: bytes | None, status: int, words: str
) -> None:
    before = csv_app.target.read_bytes()
    token = ADMIN_TOKEN if path.startswith("/admin") else None
    got, text = await csv_app.send(method, path, body, **({"token": token} if token else {}))

    assert got == status, text
    detail = json.loads(text)["detail"]
    assert words in detail
    assert csv_app.target.read_bytes() == before


async def test_a_filter_at_the_term_cap_is_served(csv_app: CsvApp) -> None:
    status, text = await csv_app.send("POST", "/.search", _search(filter=_terms(100)))

    assert status == 200, text


async def test_refusing_a_long_filter_costs_little(csv_app: CsvApp) -> None:
    """500 terms took 0.5 s of CPU before the cap; 20,000 are now refused early."""
    started = time.process_time()
    status, _ = await csv_app.send("POST", "/.search", _search(filter=_terms(20_000)))

    assert status == 400
    assert time.process_time() - started < 0.5


async def test_an_integer_within_64_bits_is_written_and_served_exactly(csv_app: CsvApp) -> None:
    """2^70 used to be written exactly but served as 1.1805916207174113e+21."""
    largest = 2**63 - 1
    status, text = await csv_app.send("POST", "/Users", _raw_user('"big-1"', str(largest)))

    assert status == 201, text
    assert json.loads(text)[EXT]["EmployeeId"] == largest
    assert str(largest) in csv_app.target.read_text(encoding="utf-8")


async def test_a_filter_text_beyond_64_bits_on_an_integer_matches_nothing(
    csv_app: CsvApp,
) -> None:
    status, text = await csv_app.send("GET", "/Users?filter=" + quote(f'EmployeeId eq "{BIG}"'))

    assert status == 200, text
    assert json.loads(text)["totalResults"] == 0


async def test_an_over_long_value_is_refused_without_echo_or_path(csv_app: CsvApp) -> None:
    """The CSV connector refuses a value its reader could not read back; the answer
    names the file, not where it lives, and shows a short part of the value."""
    anchor = "x" * 200_000
    status, text = await csv_app.send("POST", "/Users", _user(anchor))

    assert status == 400, text
    detail = json.loads(text)["detail"]
    assert detail.startswith("InputFile.txt: cannot write 'xxx")  # the connector's refusal
    assert len(detail) <= 1001
    assert "x" * 201 not in detail
    assert str(csv_app.target.parent) not in detail
    # The connector's own message, as the admin API shows it, is as short.
    status, text = await csv_app.send("GET", "/admin/exports?status=failed", token=ADMIN_TOKEN)
    (failed,) = json.loads(text)["exports"]
    assert failed["last_error"].startswith("InputFile.txt: cannot write 'xxx")
    assert "x" * 61 not in failed["last_error"]


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        pytest.param("/srv/state/InputFile.txt: refused", "InputFile.txt: refused", id="posix"),
        pytest.param(
            "C:\\data\\state\\InputFile.txt: refused", "InputFile.txt: refused", id="windows"
        ),
        pytest.param("see https://example.org/a/b", "see https://example.org/a/b", id="url-kept"),
        pytest.param("value 'abc' refused", "value 'abc' refused", id="short-kept"),
    ],
)
def test_error_details_lose_absolute_paths(detail: str, expected: str) -> None:
    assert clamp_detail(detail) == expected


def test_error_details_cut_values_and_length() -> None:
    detail = clamp_detail(f"bad value {'v' * 5000!r} " + "word " * 1000)

    assert "v" * 201 not in detail
    assert len(detail) <= 1001
