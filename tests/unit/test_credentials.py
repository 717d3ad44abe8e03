"""mailgov.credentials: initial passwords per policy, age-encrypted handover, CLI errors."""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mailgov import credentials as cr
from mailgov.model import Directory, PasswordRules, build
from tools.generate import POLICY

BASE = "dc=monre,dc=gov,dc=vn"
DAY = date(2026, 11, 29)
HAS_AGE = shutil.which("age") is not None and shutil.which("age-keygen") is not None
needs_age = pytest.mark.skipif(not HAS_AGE, reason="age / age-keygen not installed")


def rules(min_length: int = 8, classes: tuple[str, ...] = ("upper", "lower", "digit", "special"),
          personal: bool = True) -> PasswordRules:
    return PasswordRules(min_length, classes, 3, 180, 12, 5, personal)


def directory(focal: str | None = None) -> Directory:
    unit: dict[str, Any] = {"id": "vpb", "name": "Văn phòng Bộ"}
    if focal:
        unit["focal_point"] = {"name": "Trần Thị Lan", "age_recipient": focal}
    data = {
        "version": 1,
        "organization": {"name": "Bộ", "domain": "monre.gov.vn", "base_dn": BASE,
                         "it_unit": "vpb"},
        "policy": copy.deepcopy(POLICY),
        "units": [unit, {"id": "tcmt", "name": "Tổng cục Môi trường"}],
        "mailboxes": [
            {"address": "natuan", "name": "Nguyễn Anh Tuấn", "unit": "vpb", "birth": "1990-02"},
            {"address": "ttlan", "name": "Trần Thị Lan", "unit": "tcmt"},
        ],
    }
    return build(data)


def keypair(tmp: Path) -> tuple[Path, str]:
    key = tmp / "focal.key"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = next(line.split(": ", 1)[1] for line in key.read_text().splitlines()
                  if line.startswith("# public key: "))
    return key, public


def decrypt(path: Path, key: Path) -> str:
    return subprocess.run(["age", "-d", "-i", str(key), str(path)], check=True,
                          capture_output=True).stdout.decode()


# --------------------------------------------------------------------------- passwords


@pytest.mark.parametrize(("r", "length"), [
    (rules(8), 16),
    (rules(10), 16),
    (rules(24), 24),  # a policy minimum above the default length wins
    (rules(8, ("lower", "digit")), 16),
    (rules(12, ("upper",)), 16),
])
def test_generated_password_meets_policy(r: PasswordRules, length: int) -> None:
    for _ in range(200):
        pw = cr.generate_password(r)
        assert len(pw) == length
        assert cr.check_password(pw, r) == []
        for cls in r.required_classes:
            assert any(c in cr.CLASSES[cls] for c in pw), cls
        assert not any(c in pw for c in " \"'`$\\"), "characters that break quoting"


def test_passwords_are_random() -> None:
    assert len({cr.generate_password(rules()) for _ in range(500)}) == 500


@pytest.mark.parametrize(("pw", "problem"), [
    ("Aa1!", "shorter than 8"),
    ("abcdefg1!", "no upper"),
    ("ABCDEFG1!", "no lower"),
    ("Abcdefgh!", "no digit"),
    ("Abcdefgh1", "no special"),
    ("Xnatuan#12", "personal data 'natuan'"),
    ("Tuan#1234zz", "personal data 'tuan'"),
    ("Qq#1990xyzw", "personal data '1990'"),
])
def test_check_password_finds_each_problem(pw: str, problem: str) -> None:
    tokens = cr.personal_tokens(local="natuan", name="Nguyễn Anh Tuấn", birth="1990-02")
    assert any(problem in p for p in cr.check_password(pw, rules(), tokens))


def test_personal_data_allowed_when_policy_says_so() -> None:
    assert cr.check_password("Xnatuan#12", rules(personal=False), ("natuan",)) == []


def test_personal_tokens() -> None:
    t = cr.personal_tokens(local="tuan.na", name="Nguyễn Anh Tuấn", birth="1990-02")
    assert {"tuan.na", "tuan", "nguyen", "anh", "nguyenanhtuan", "1990", "021990"} <= set(t)
    assert "na" not in t  # too short to check: it would refuse most random strings


def test_generator_avoids_personal_tokens() -> None:
    # A forbidden token of 3 letters appears by chance in random text now and then; the
    # generator must retry rather than return it.
    tokens = ("abc", "xyz", "kmn", "pqr")
    for _ in range(300):
        pw = cr.generate_password(rules(), tokens)
        assert not any(t in pw.lower() for t in tokens)


# --------------------------------------------------------------------------- artifacts


def test_artifact_path_never_overwrites(tmp_path: Path) -> None:
    first = cr.artifact_path(tmp_path, "vpb", DAY)
    assert first.name == "vpb-2026-11-29.age"
    first.write_text("x")
    second = cr.artifact_path(tmp_path, "vpb", DAY)
    assert second.name == "vpb-2026-11-29-2.age"
    second.write_text("y")
    assert cr.artifact_path(tmp_path, "vpb", DAY).name == "vpb-2026-11-29-3.age"


def test_encrypt_refuses_non_age_key(tmp_path: Path) -> None:
    with pytest.raises(cr.CredentialError, match="not an age public key"):
        cr.encrypt_age("secret", ["ssh-ed25519 AAAA"], tmp_path / "x.age")
    with pytest.raises(cr.CredentialError, match="no age recipient"):
        cr.encrypt_age("secret", [], tmp_path / "x.age")
    assert list(tmp_path.iterdir()) == []


@needs_age
def test_encrypt_round_trip_and_no_cleartext(tmp_path: Path) -> None:
    key, public = keypair(tmp_path)
    out = cr.encrypt_age("natuan@monre.gov.vn\tS3cret!Pass\n", [public], tmp_path / "o/a.age")
    assert out.stat().st_mode & 0o777 == 0o600
    assert b"S3cret!Pass" not in out.read_bytes()
    assert "S3cret!Pass" in decrypt(out, key)
    assert [p.name for p in out.parent.iterdir()] == ["a.age"]  # no temp file left


@needs_age
def test_issue_one_artifact_per_unit(tmp_path: Path) -> None:
    key, public = keypair(tmp_path)
    d = directory(focal=public)
    todo = [{"dn": f"uid=natuan,ou=people,{BASE}", "mail": "natuan@monre.gov.vn", "unit": "vpb"},
            {"dn": f"uid=ttlan,ou=people,{BASE}", "mail": "ttlan@monre.gov.vn", "unit": "tcmt"}]
    creds, paths, waiting = cr.issue(d, todo, tmp_path / "credentials", today=DAY,
                                     extra_recipients={"tcmt": [public]},
                                     change_url="https://mail1.monre.gov.vn/")
    assert waiting == {}
    assert sorted(p.name for p in paths) == ["tcmt-2026-11-29.age", "vpb-2026-11-29.age"]
    by_mail = {c.mail: c.password for c in creds}
    vpb = decrypt(tmp_path / "credentials" / "vpb-2026-11-29.age", key)
    assert f"natuan@monre.gov.vn\t{by_mail['natuan@monre.gov.vn']}" in vpb
    assert "ttlan@" not in vpb  # each unit's focal point sees only its unit
    assert "change it at: https://mail1.monre.gov.vn/" in vpb  # where to change it
    for c in creds:
        assert cr.check_password(c.password, d.policy.password_users,
                                 cr.personal_tokens(local=c.mail.split("@")[0])) == []


def test_unit_without_recipient_waits_and_gets_nothing(tmp_path: Path) -> None:
    d = directory(focal="age1" + "q" * 58)
    todo = [{"dn": "uid=ttlan,...", "mail": "ttlan@monre.gov.vn", "unit": "tcmt"}]
    creds, paths, waiting = cr.issue(d, todo, tmp_path / "credentials", today=DAY)
    assert waiting == {"tcmt": ["ttlan@monre.gov.vn"]}
    assert creds == [] and paths == []  # no password made, so none can be set unreadable
    assert not (tmp_path / "credentials").exists()


def test_cli_bad_input_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = Path(__file__).resolve().parents[1] / "data" / "good" / "minimal.yaml"
    monkeypatch.setattr("sys.stdin", io.StringIO("not json"))
    rc = cr.main(["issue", "--data", str(data), "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "bad todo JSON" in err and "Traceback" not in err
    monkeypatch.setattr("sys.stdin", io.StringIO("[]"))
    rc = cr.main(["issue", "--data", str(data), "--out-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0 and json.loads(out) == {"passwords": {}, "artifacts": [], "set": [],
                                           "waiting": {}}


# --- the state guard (issue 12, finding 9): who can write the recipients file reads every
# initial password, so the handover state must be the controller user's alone, off the checkout.


def _safe_dir(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    return state


def test_state_outside_checkout_owned_and_private_passes(tmp_path: Path) -> None:
    state = _safe_dir(tmp_path)
    (state / "credentials").mkdir(mode=0o700)
    (state / "credentials" / "recipients.json").write_text("{}")
    (state / "credentials" / "recipients.json").chmod(0o600)
    assert cr.state_path_problems(state / "credentials") == []
    assert cr.state_path_problems(state / "credentials" / "recipients.json") == []
    # Not made yet is fine: what exists above it is checked.
    assert cr.state_path_problems(state / "new" / "recipients.json") == []


def test_state_inside_a_git_checkout_refused(tmp_path: Path) -> None:
    repo = _safe_dir(tmp_path)
    (repo / ".git").mkdir()
    problems = cr.state_path_problems(repo / ".lab" / "credentials" / "recipients.json")
    assert len(problems) == 1 and f"inside the git checkout {repo}" in problems[0]


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_recipients_file_writable_by_others_refused(tmp_path: Path, mode: int) -> None:
    state = _safe_dir(tmp_path)
    f = state / "recipients.json"
    f.write_text("{}")
    f.chmod(mode)
    assert cr.state_path_problems(f) == [f"{f} is writable by others (mode {mode:04o})"]


def test_directory_above_writable_by_others_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # no sticky bit: anyone may replace what is below
    (shared / "credentials").mkdir(mode=0o700)
    problems = cr.state_path_problems(shared / "credentials" / "recipients.json")
    assert problems == [f"{shared} is writable by others (mode 0777)"]
    shared.chmod(0o1777)  # sticky, as /tmp: others cannot replace our entries
    assert cr.state_path_problems(shared / "credentials" / "recipients.json") == []


def test_owned_by_someone_else_refused(tmp_path: Path) -> None:
    state = _safe_dir(tmp_path)
    f = state / "recipients.json"
    f.write_text("{}")
    f.chmod(0o600)
    os.chown(f, 4242, 4242)  # the tests run as root, as CI does
    assert cr.state_path_problems(f) == [f"{f} is owned by uid 4242, not by this user or root"]
    # Root's own files are accepted whoever runs it (root owns / and /var).
    assert cr.state_path_problems(state, uid=4242) == []


def test_check_state_command_refuses_with_reason(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    repo = _safe_dir(tmp_path)
    (repo / ".git").mkdir()
    code = cr.main(["check-state", "--out-dir", str(repo / ".lab/credentials"),
                    "--recipients-file", str(repo / ".lab/credentials/recipients.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("mailgov credentials: unsafe lifecycle state: ")
    assert "(mailgov_state_dir)" in err
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    assert cr.main(["check-state", "--out-dir", str(other / "credentials")]) == 0
