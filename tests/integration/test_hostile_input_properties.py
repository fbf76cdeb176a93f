"""Generated requests on every route: whatever a client sends, the answer is never a
5xx, and a request the host refuses leaves the target file as it was."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import EXT
from tests.integration.csv_app import ADMIN_TOKEN, CsvApp, csv_app

__all__ = ["csv_app"]  # the fixture, imported to be found

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"

# Raw JSON texts json.dumps never writes, or writes only rarely by chance.
POISON = st.sampled_from(
    [
        "NaN",
        "-Infinity",
        "1e400",
        str(2**64),
        str(2**70),
        str(-(2**63) - 1),
        '"\\ud800"',
        '"a\\udfff"',
        "[" * 70 + "]" * 70,
        '{"a":' * 70 + "1" + "}" * 70,
        "true",
        "12.5",
        '"' + "x" * 300 + '"',
        f'"{2**70}"',
        f'"{-(2**63) - 1}"',
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
# A value slot: plain JSON most of the time, a poison now and then.
SLOT = st.one_of(JSON_VALUES.map(json.dumps), POISON)
ATTRIBUTES = st.sampled_from(
    ["AzureObjectID", "Title", "EmployeeId", "IsActive", "DisplayName", "userName", "id", "x"]
)
FILTER_VALUES = st.one_of(
    st.sampled_from(['"a"', "1", str(2**70), "true", "null", '"\\ud800"', "1e999", "-0"]),
    st.text(max_size=10).map(json.dumps),
)
FILTER_TERM = st.builds(
    "{} {} {}".format,
    ATTRIBUTES,
    st.sampled_from(["eq", "ne", "co", "sw", "gt", "le", "pr", "zz"]),
    FILTER_VALUES,
)
FILTERS = st.one_of(
    st.lists(FILTER_TERM, min_size=1, max_size=4).map(" and ".join),
    st.builds("not ({}) or {}".format, FILTER_TERM, FILTER_TERM),
    st.text(max_size=30),
)
BOUNDARIES = ["", "1.5", "true", "1e30", "-1", "0", "٣", str(2**63), str(-(2**63) - 1), "9" * 26]
QUERY_INT = st.one_of(
    st.sampled_from(BOUNDARIES),
    st.sampled_from(BOUNDARIES),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


def _object(slots: dict[str, str]) -> bytes:
    """A JSON object whose values are raw JSON texts."""
    return ("{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in slots.items()) + "}").encode()


@st.composite
def user_bodies(draw: st.DrawFn) -> bytes:
    slots = {name: draw(SLOT) for name in draw(st.lists(ATTRIBUTES, max_size=4, unique=True))}
    # A plain anchor most of the time, so that some writes pass and reach the target.
    anchor = st.uuids().map(str).map(json.dumps)
    slots["AzureObjectID"] = draw(st.one_of(anchor, anchor, SLOT))
    extension = _object(slots).decode()
    top = {"schemas": json.dumps([CORE, EXT]), EXT: extension}
    if draw(st.booleans()):
        top["userName"] = draw(SLOT)
    if draw(st.booleans()):
        top["externalId"] = draw(SLOT)
    return _object(top)


@st.composite
def patch_bodies(draw: st.DrawFn) -> bytes:
    operation = {
        "op": draw(st.sampled_from(['"replace"', '"add"', '"remove"', '"zap"', "5"])),
        "path": draw(st.one_of(ATTRIBUTES.map(json.dumps), SLOT)),
        "value": draw(SLOT),
    }
    return _object(
        {
            "schemas": '["urn:ietf:params:scim:api:messages:2.0:PatchOp"]',
            "Operations": "[" + _object(operation).decode() + "]",
        }
    )


@st.composite
def search_bodies(draw: st.DrawFn) -> bytes:
    """Valid fields but one: a request with every field bad is refused at its first
    field and never reaches the checks of the others."""
    names = st.lists(ATTRIBUTES, max_size=3).map(json.dumps)
    slots = {
        "filter": draw(FILTER_TERM.map(json.dumps)),
        "startIndex": draw(st.integers(min_value=1, max_value=5).map(str)),
        "count": draw(st.integers(min_value=0, max_value=5).map(str)),
        "attributes": draw(names),
        "excludedAttributes": draw(names),
    }
    hostile = draw(st.sampled_from(sorted(slots)))
    slots[hostile] = draw(st.one_of(SLOT, QUERY_INT))
    keep = draw(st.lists(st.sampled_from(sorted(slots)), unique=True))
    return _object({name: slots[name] for name in {*keep, hostile}})


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    """At most one hostile parameter, beside plain ones (as ``search_bodies``)."""
    params = {"count": draw(st.integers(min_value=0, max_value=5).map(str))}
    hostile = draw(
        st.sampled_from(
            ["filter", "startIndex", "count", "attributes", "excludedAttributes", "detail"]
        )
    )
    params[hostile] = draw(st.one_of(QUERY_INT, FILTERS, st.text(max_size=20)))
    return "?" + urlencode(params) if draw(st.booleans()) else ""


@st.composite
def admin_requests(draw: st.DrawFn) -> tuple[str, str, bytes | None]:
    which = draw(st.integers(min_value=0, max_value=3))
    if which == 0:
        query = {"limit": draw(QUERY_INT), "status": draw(st.text(max_size=8))}
        return "GET", "/admin/exports?" + urlencode(query), None
    if which == 1:
        event = draw(st.one_of(QUERY_INT, st.just("9" * 26)))
        return "GET", f"/admin/exports/{event}", None
    ids = draw(st.one_of(SLOT, st.lists(SLOT, max_size=3).map(lambda s: "[" + ",".join(s) + "]")))
    route = draw(st.sampled_from(["replay", "discard"]))
    return "POST", f"/admin/exports/{route}", _object({"ids": ids, "all": draw(SLOT)})


@st.composite
def requests(draw: st.DrawFn, user_id: str) -> tuple[str, str, bytes | None, str]:
    """(method, path, body, token); paths relative to the SCIM base unless /admin."""
    some_id = draw(st.one_of(st.just(user_id), st.text(min_size=1, max_size=12), QUERY_INT))
    some_id = some_id.replace("/", "_").replace("?", "_").replace("#", "_") or "x"
    query = draw(query_strings())
    token = draw(st.sampled_from(["scim"] * 8 + ["admin", "wrong"]))
    route = draw(st.integers(min_value=0, max_value=10))
    if route == 0:
        return "POST", "/Users", draw(user_bodies()), token
    if route == 1:
        return "PUT", f"/Users/{user_id}", draw(user_bodies()), token
    if route == 2:
        return "PATCH", f"/Users/{some_id}", draw(patch_bodies()), token
    if route == 3:
        where = draw(st.sampled_from(["/.search", "/Users/.search"]))
        return "POST", where, draw(search_bodies()), token
    if route == 4:
        return "GET", "/Users" + query, None, token
    if route == 5:
        return "GET", f"/Users/{some_id}{query}", None, token
    if route == 6:
        return "DELETE", f"/Users/{some_id}", None, token
    if route == 7:
        document = draw(st.sampled_from(["Schemas", "ResourceTypes"]))
        return "GET", f"/{document}/{some_id}{query}", None, token
    if route == 8:
        document = draw(
            st.sampled_from(["ServiceProviderConfig", "Schemas", "ResourceTypes", "Groups"])
        )
        return "GET", f"/{document}{query}", None, token
    if route == 9:
        return "GET", "/health" + query, None, draw(st.sampled_from(["admin", "wrong"]))
    method, path, body = draw(admin_requests())
    return method, path, body, draw(st.sampled_from(["admin", "admin", "wrong"]))


@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_no_request_gets_a_5xx_nor_changes_the_target_when_refused(
    csv_app: CsvApp, data: st.DataObject
) -> None:
    method, path, body, who = data.draw(requests(csv_app.user_id))
    token = {"scim": None, "admin": ADMIN_TOKEN, "wrong": "wrong-token-0123456789"}[who]
    before = csv_app.target.read_bytes()

    status, text = await csv_app.send(method, path, body, **({"token": token} if token else {}))

    assert status < 500, f"{method} {path} {body!r}: {status} {text}"
    if status >= 400:
        assert csv_app.target.read_bytes() == before, f"{method} {path} {body!r}: {status}"


POISON_TEXTS = [
    "NaN",
    "-Infinity",
    "1e400",
    str(2**64),
    str(2**70),
    '"\\ud800"',
    "[" * 70 + "]" * 70,
    "true",
    "12.5",
    "5",
    f'"{2**70}"',
]
SEARCH_PARAMETERS = ["filter", "startIndex", "count", "attributes", "excludedAttributes"]


async def test_every_search_parameter_at_every_limit_gets_no_5xx(csv_app: CsvApp) -> None:
    """Each read parameter with each limit value, from the query string and from a
    .search body: the generated requests above reach a given pair too seldom."""
    filters = [f"EmployeeId eq {value}" for value in BOUNDARIES + POISON_TEXTS]
    for name in SEARCH_PARAMETERS:
        for value in BOUNDARIES + POISON_TEXTS + filters:
            for method, path, body in (
                ("GET", "/Users?" + urlencode({name: value}), None),
                ("POST", "/.search", _object({name: value})),
                ("POST", "/.search", _object({name: json.dumps(value)})),
            ):
                status, text = await csv_app.send(method, path, body)
                assert status < 500, f"{method} {path} {body!r}: {status} {text}"


async def test_every_user_attribute_at_every_limit_is_refused_untouched(
    csv_app: CsvApp,
) -> None:
    """The anchor, a String, an Integer and a Boolean attribute with each limit value,
    in a create and a replace: never a 5xx, and the target as it was when refused."""
    for name in ("AzureObjectID", "Title", "EmployeeId", "IsActive"):
        for value in BOUNDARIES + POISON_TEXTS:
            slots = {"AzureObjectID": '"limits-1"', name: value or '""'}
            body = _object({EXT: _object(slots).decode()})
            for method, path in (("POST", "/Users"), ("PUT", f"/Users/{csv_app.user_id}")):
                before = csv_app.target.read_bytes()
                status, text = await csv_app.send(method, path, body)
                assert status < 500, f"{method} {path} {body!r}: {status} {text}"
                if status >= 400:
                    assert csv_app.target.read_bytes() == before, f"{body!r}: {status}"
