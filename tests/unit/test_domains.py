"""Several domains (issue 14, item 1): a primary and alias domains with end dates; every
address receives at every live alias domain; `mailgov domain migrate`; role facts; dns."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mailgov import role_vars
from mailgov.cli import main
from mailgov.directory import FORMER, desired_entries
from mailgov.model import build
from mailgov.plan import plan
from mailgov.validate import validate
from tests.unit.test_dns import fake_pem
from tests.unit.test_plan import TODAY, _base, live_of

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "mailboxes.yaml"
OLD, NEW = "monre.gov.vn", "mae.gov.vn"


def migrated(until: str | None = "2027-06-30") -> dict[str, Any]:
    data = _base()
    data["organization"]["domain"] = NEW
    alias: dict[str, Any] = {"domain": OLD}
    if until:
        alias["until"] = until
    data["organization"]["alias_domains"] = [alias]
    return data


def entry(data: dict[str, Any], prefix: str, today: date | None = TODAY) -> dict[str, Any]:
    return next(e.attributes for e in desired_entries(build(data), today)
                if e.dn.startswith(prefix))


def test_every_mailbox_unit_mailbox_and_list_receives_at_the_live_alias_domain() -> None:
    data = migrated()
    person = entry(data, "uid=natuan,")
    assert person["mail"] == (f"natuan@{NEW}",)
    assert {f"natuan@{NEW}", f"natuan@{OLD}", f"tuan.na@{NEW}", f"tuan.na@{OLD}"} <= set(
        person["mailAlias"])
    assert set(entry(data, "ou=vpb,")["mailAlias"]) == {f"vpb@{NEW}", f"vpb@{OLD}"}
    assert set(entry(data, "cn=vpb-all,")["mailAlias"]) == {f"vpb-all@{NEW}", f"vpb-all@{OLD}"}
    # on the end day the alias domain no longer receives
    assert entry(data, "uid=natuan,", date(2027, 6, 30))["mailAlias"] == (
        f"natuan@{NEW}", f"tuan.na@{NEW}")


def test_a_migration_keeps_every_old_address_and_passes_with_a_reasoned_override() -> None:
    have = _base()
    live = live_of(have)
    p = plan(build(migrated()), live, today=TODAY)
    assert [r.split(" ", 1)[0] for r in p.refusals] == ["MG609", "MG610"]
    p = plan(build(migrated()), live, today=TODAY, allow_mass_change="35/2025/NĐ-CP")
    assert p.ok and set(p.counts()) == {"modify"}
    assert not any(c.delete.get("mailAlias") for c in p.changes)  # nothing stops delivering
    # the period over: the old addresses go, kept on their entries as former (reserved)
    applied = live_of(migrated(None))
    later = plan(build(migrated()), applied, today=date(2027, 6, 30),
                 allow_mass_change="alias period over")
    natuan = next(c for c in later.changes if c.subject == f"natuan@{NEW}")
    assert set(natuan.delete["mailAlias"]) == {f"natuan@{OLD}", f"tuan.na@{OLD}"}
    assert set(natuan.add[FORMER]) == {f"natuan@{OLD}", f"tuan.na@{OLD}"}


def _validate(data: dict[str, Any], tmp_path: Path) -> list[str]:
    import yaml

    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    # the planner's test data names its 40 fillers freely (MG210): not what is checked here
    return [p.rule for p in validate(path, today=TODAY).problems if p.rule != "MG210"]


@pytest.mark.parametrize(("alias", "rule"), [
    ({"domain": NEW}, "MG222"),                         # the primary itself
    ({"domain": OLD, "until": "2026-11-28"}, "MG223"),  # ended yesterday
    ({"domain": OLD, "until": "2026-02-30"}, "MG306"),  # no such day
])
def test_bad_alias_domains(alias: dict[str, Any], rule: str, tmp_path: Path) -> None:
    data = migrated()
    data["organization"]["alias_domains"] = [alias]
    assert _validate(data, tmp_path) == [rule]


def test_alias_listed_twice_and_an_alias_at_an_alias_domain(tmp_path: Path) -> None:
    data = migrated()
    data["organization"]["alias_domains"].append({"domain": OLD})
    assert _validate(data, tmp_path) == ["MG222"]
    data = migrated()
    data["mailboxes"][1]["aliases"] = [f"lan.tt@{OLD}"]  # an alias domain is ours
    assert _validate(data, tmp_path) == []


def test_domain_migrate_is_one_small_edit_that_validates(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    path = tmp_path / "mailboxes.yaml"
    shutil.copy(SAMPLE, path)
    before = path.read_text(encoding="utf-8").splitlines()
    assert main(["domain", "migrate", OLD, NEW, "--keep-until", "2027-06-30", "--request",
                 "35/2025/NĐ-CP", "--data", str(path)]) == 0
    after = path.read_text(encoding="utf-8").splitlines()
    # comments and layout kept: the domain line changed, two lines added below it
    i = before.index(f"  domain: {OLD}")
    assert after[:i] == before[:i] and after[i + 3:] == before[i + 1:]
    assert after[i:i + 3] == [f"  domain: {NEW}",
                              "  alias_domains:  # every address receives here too",
                              f"    - {{ domain: {OLD}, until: 2027-06-30, request: "
                              "35/2025/NĐ-CP }"]
    assert validate(path).ok
    capsys.readouterr()
    # a second migration appends to the block list
    assert main(["domain", "migrate", NEW, "mae2.gov.vn", "--data", str(path)]) == 0
    assert "    - { domain: mae.gov.vn }" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("argv", "text"), [
    (["nre.gov.vn", NEW], "organization.domain is 'monre.gov.vn', not 'nre.gov.vn'"),
    ([OLD, OLD], "the new domain is the old one"),
    ([OLD, "not a domain"], "would not validate; nothing was written"),
])
def test_domain_migrate_bad_input_changes_nothing(argv: list[str], text: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mailboxes.yaml"
    shutil.copy(SAMPLE, path)
    original = path.read_bytes()
    assert main(["domain", "migrate", *argv, "--data", str(path)]) == 1
    err = capsys.readouterr().err
    assert text in err and "Traceback" not in err
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["mailboxes.yaml"]  # no temp file left


def test_role_facts_and_dns_follow_the_domains(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mailboxes.yaml"
    shutil.copy(SAMPLE, path)
    assert main(["domain", "migrate", OLD, NEW, "--data", str(path)]) == 0
    facts = role_vars.load_facts(path)
    assert facts["organization"]["domain"] == NEW
    assert facts["organization"]["alias_domains"] == [OLD]
    # a key per domain, as the mailauth role fetches them: DIR/<domain>/<selector>.pub
    keys = tmp_path / "dkim"
    for domain, seed in ((NEW, 1), (OLD, 2)):
        (keys / domain).mkdir(parents=True)
        (keys / domain / "s2026a-mail1.pub").write_text(fake_pem(seed))
    (keys / "s2026a-mail1.pub").write_text(fake_pem(3))  # single-domain layout: not used
    capsys.readouterr()
    assert main(["dns", str(path), "--dkim-public-key-dir", str(keys), "--format",
                 "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["domain"] == NEW
    [old] = doc["alias_domains"]
    assert old["domain"] == OLD
    names = {(r["name"], r["type"]) for r in old["records"]}
    assert {(f"{OLD}.", "MX"), (f"s2026a-mail1._domainkey.{OLD}.", "TXT"),
            (f"_dmarc.{OLD}.", "TXT"), (f"_mta-sts.{OLD}.", "TXT"), (f"mta-sts.{OLD}.", "CNAME"),
            (f"_smtp._tls.{OLD}.", "TXT")} <= names

    def dkim(doc: dict[str, Any], domain: str) -> str:
        [v] = [r["value"] for r in doc["records"]
               if r["name"] == f"s2026a-mail1._domainkey.{domain}."]
        return str(v).split("p=")[1]

    # each domain publishes its own key, never the other's
    assert dkim(doc, NEW) == "".join(fake_pem(1).splitlines()[1:-1])
    assert dkim(old, OLD) == "".join(fake_pem(2).splitlines()[1:-1])
    # an alias domain without its own key directory publishes no key (a warning says so)
    shutil.rmtree(keys / OLD)
    assert main(["dns", str(path), "--dkim-public-key-dir", str(keys), "--format",
                 "json"]) == 0
    out, err = capsys.readouterr()
    [old] = json.loads(out)["alias_domains"]
    assert not [r for r in old["records"] if "._domainkey." in r["name"]]
    assert f"no DKIM public keys for {OLD} in {keys}" in err
    # the alias domain's mail goes to the same hosts
    assert next(r["value"] for r in old["records"] if r["type"] == "MX") == f"10 mail1.{NEW}."


