"""The rules of the LDAP connector's delta sources without a server: the filters
that ask a change log for the writes since a watermark, what a log entry says about
one write, whether a log still covers a watermark, and the ``delta`` settings.

The retro changelog (389 Directory Server) and the USN (AD LDS) sources are tested
here only; the accesslog source also runs against slapd in ``test_delta``."""

from __future__ import annotations

import pytest
from ecmahost.connectors.ldap import changelog as rules
from ecmahost.connectors.ldap.connector import LdapSettings
from ecmahost.connectors.ldap.settings import LdapDelta
from pydantic import ValidationError

BASE = {"url": "ldap://127.0.0.1", "bind_dn": "cn=a", "password": "p", "base_dn": "dc=x"}


def test_delta_accesslog_filter_asks_for_successful_writes_since_the_watermark() -> None:
    query = rules.accesslog_since_filter("20260101000000.000001Z")
    assert query.startswith("(&(objectClass=auditWriteObject)(reqResult=0)")
    assert "(reqStart>=20260101000000.000001Z)" in query
    for kind in ("add", "modify", "modrdn", "delete"):
        assert f"(reqType={kind})" in query
    assert rules.accesslog_covers_filter("2026*)") == (
        "(&(objectClass=auditObject)(reqStart<=2026\\2a\\29))"
    )


def test_delta_accesslog_entry_reads_as_one_write() -> None:
    change = rules.accesslog_change(
        {
            "reqtype": ["delete"],
            "reqdn": ["uid=a,dc=x"],
            "reqresult": ["0"],
            "reqstart": ["20260101000000.000001Z"],
            "reqold": ["uid: a", "cn: A Person", "jpegPhoto:: AAEC", "mail;lang-en: a@x"],
            "reqentryuuid": ["1234"],
        }
    )
    assert change is not None
    assert (change.kind, change.dn, change.position) == ("delete", "uid=a,dc=x", change.position)
    assert change.old == {
        "uid": ["a"],
        "cn": ["A Person"],
        "mail": ["a@x"],
        "entryuuid": ["1234"],
    }


def test_delta_accesslog_failed_or_unknown_writes_are_no_change() -> None:
    entry = {"reqtype": ["modify"], "reqdn": ["uid=a,dc=x"], "reqstart": ["20260101000000Z"]}
    assert rules.accesslog_change({**entry, "reqresult": ["65"]}) is None
    assert rules.accesslog_change({**entry, "reqresult": ["0"], "reqtype": ["search"]}) is None
    assert rules.accesslog_change({**entry, "reqresult": ["0"]}) is not None


def test_delta_accesslog_modrdn_new_dn_without_reqnewdn() -> None:
    entry = {
        "reqtype": ["modrdn"],
        "reqdn": ["uid=a,ou=one,dc=x"],
        "reqresult": ["0"],
        "reqstart": ["20260101000000Z"],
        "reqnewrdn": ["uid=b"],
    }
    moved = rules.accesslog_change({**entry, "reqnewsuperior": ["ou=two,dc=x"]})
    assert moved is not None and moved.new_dn == "uid=b,ou=two,dc=x"
    renamed = rules.accesslog_change(entry)
    assert renamed is not None and renamed.new_dn == "uid=b,ou=one,dc=x"


def test_delta_generalized_time_watermarks() -> None:
    assert rules.is_generalized_time(rules.generalized_now())
    assert rules.is_generalized_time("20260101000000Z")
    assert not rules.is_generalized_time("2026-01-01")
    assert not rules.is_generalized_time("20260101000000Z)(objectClass=*")


def test_delta_changelog_filter_and_entry() -> None:
    assert rules.changelog_since_filter("41") == (
        "(&(objectClass=changeLogEntry)(changeNumber>=41))"
    )
    with pytest.raises(ValueError):
        rules.changelog_since_filter("41)(x=*")
    change = rules.changelog_change(
        {
            "changenumber": ["42"],
            "changetype": ["modrdn"],
            "targetdn": ["uid=a,ou=p,dc=x"],
            "newrdn": ["uid=b"],
            "deleteoldrdn": ["TRUE"],
            "targetuniqueid": ["u-1"],
            "changes": ["replace: sn"],
        }
    )
    assert change is not None
    assert (change.position, change.kind, change.new_dn) == ("42", "modrdn", "uid=b,ou=p,dc=x")
    assert change.old["targetuniqueid"] == ["u-1"] and "changes" not in change.old
    assert rules.changelog_change({"changenumber": ["x"], "changetype": ["add"]}) is None


@pytest.mark.parametrize(
    ("first", "last", "watermark", "covered"),
    [
        ("1", "50", "10", True),
        ("11", "50", "10", True),  # change 10 trimmed; 11 on are all there
        ("12", "50", "10", False),  # change 11 trimmed: it may have been ours
        ("1", "5", "10", False),  # the log numbers from below the watermark: rebuilt
        (None, None, "0", True),  # nothing ever logged, nothing ever read
        (None, None, "10", False),  # emptied since the watermark
        ("1", "50", "ten", False),
    ],
)
def test_delta_changelog_covers(
    first: str | None, last: str | None, watermark: str, covered: bool
) -> None:
    assert rules.changelog_covers(first, last, watermark) is covered


def test_delta_usn_filter_and_cover() -> None:
    assert rules.usn_since_filter("(objectClass=user)", "9000") == (
        "(&(objectClass=user)(uSNChanged>=9000))"
    )
    assert rules.usn_covers("9000", "8999")
    assert rules.usn_covers("9000", "9000")
    assert not rules.usn_covers("9000", "9001")  # another server's, or from before a restore
    assert not rules.usn_covers(None, "1")
    assert not rules.usn_covers("9000", "-1")


def test_delta_settings() -> None:
    assert LdapDelta(source="accesslog").base == "cn=accesslog"
    assert LdapDelta(source="changelog").base == "cn=changelog"
    assert LdapDelta(source="accesslog", log_base="cn=log,dc=x").base == "cn=log,dc=x"
    assert LdapSettings.model_validate(BASE).delta is None
    with pytest.raises(ValidationError, match="unused"):
        LdapSettings.model_validate({**BASE, "delta": {"source": "usn", "log_base": "cn=x"}})
    with pytest.raises(ValidationError, match="distinguished name"):
        LdapSettings.model_validate({**BASE, "delta": {"source": "accesslog", "log_base": "x"}})
    with pytest.raises(ValidationError):
        LdapSettings.model_validate({**BASE, "delta": {"source": "modifyTimestamp"}})
