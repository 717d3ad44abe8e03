"""The restore's filter on what comes from the storage host (roles/backup, mailgov-restore-tar).

Defence in depth behind the signature (BAK-08/09): even a signed archive may bring only files
and directories under the expected prefix, without setuid/setgid bits, owned by the restore's
user; one bad member refuses the whole archive before anything is written (BAK-10).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import io
import os
import pwd
import stat
import sys
import tarfile
from pathlib import Path

import pytest

_PATH = (Path(__file__).resolve().parents[2]
         / "roles/backup/files/usr/local/sbin/mailgov-restore-tar")
_loader = importlib.machinery.SourceFileLoader("mailgov_restore_tar", str(_PATH))
_spec = importlib.util.spec_from_loader("mailgov_restore_tar", _loader)
assert _spec
rt = importlib.util.module_from_spec(_spec)
sys.modules["mailgov_restore_tar"] = rt
_loader.exec_module(rt)

OWNER = pwd.getpwuid(os.getuid())
PREFIX = "var/vmail"


def member(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o600, data: bytes = b"",
           link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname, info.mtime = kind, mode, link, 1_700_000_000
    info.uid = info.gid = 0  # the archive says root: the restore must not care
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data


def archive(path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


GOOD = [
    member("var/vmail/", tarfile.DIRTYPE, 0o700),
    member("var/vmail/monre.gov.vn/", tarfile.DIRTYPE, 0o700),
    member("var/vmail/monre.gov.vn/lthoa/", tarfile.DIRTYPE, 0o700),
    member("var/vmail/monre.gov.vn/lthoa/msg1", data=b"Subject: one\n\nhello\n"),
    member("var/vmail/monre.gov.vn/lthoa/msg2", mode=0o640, data=b"Subject: two\n\n"),
]


def run(tmp_path: Path, arc: Path, *extra: str) -> tuple[int, str, str]:
    root = tmp_path / "root"
    (root / "var").mkdir(parents=True, exist_ok=True)
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        rc = rt.main(["extract", str(arc), "--prefix", PREFIX, "--owner", OWNER.pw_name,
                      "--stage", str(tmp_path / "stage"), "--root", str(root), *extra])
    finally:
        sys.stdout, sys.stderr = old
    return rc, out.getvalue(), err.getvalue()


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_good_archive_is_restored_owned_by_the_restore_user(tmp_path: Path) -> None:
    rc, out, err = run(tmp_path, archive(tmp_path / "a.tar.gz", *GOOD))
    assert (rc, err) == (0, ""), err
    assert out.strip() == "added=2 replaced=0 kept=0"
    msg = tmp_path / "root/var/vmail/monre.gov.vn/lthoa/msg2"
    assert msg.read_bytes() == b"Subject: two\n\n"
    st = msg.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (OWNER.pw_uid, OWNER.pw_gid, 0o640)
    assert stat.S_IMODE((tmp_path / "root/var/vmail/monre.gov.vn").stat().st_mode) == 0o700
    assert not (tmp_path / "stage").exists(), "the staging dir is removed after the restore"


def test_files_on_disk_are_kept_without_replace(tmp_path: Path) -> None:
    live = tmp_path / "root/var/vmail/monre.gov.vn/lthoa/msg1"
    live.parent.mkdir(parents=True)
    live.write_bytes(b"newer mail\n")
    rc, out, _ = run(tmp_path, archive(tmp_path / "a.tar.gz", *GOOD))
    assert rc == 0 and out.strip() == "added=1 replaced=0 kept=1"
    assert live.read_bytes() == b"newer mail\n"


def test_replace_moves_a_different_file_aside(tmp_path: Path) -> None:
    live = tmp_path / "root/var/vmail/monre.gov.vn/lthoa/msg1"
    live.parent.mkdir(parents=True)
    live.write_bytes(b"a rebuilt host's new key\n")
    rc, out, _ = run(tmp_path, archive(tmp_path / "a.tar.gz", *GOOD), "--replace")
    assert rc == 0 and out.strip() == "added=1 replaced=1 kept=0"
    assert live.read_bytes() == b"Subject: one\n\nhello\n"
    aside = [p for p in live.parent.iterdir() if ".before-restore-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == b"a rebuilt host's new key\n"


@pytest.mark.parametrize(("bad", "reason"), [
    (member("etc/cron.d/x", data=b"* * * * * root sh -c evil\n"),
     "'etc/cron.d/x' is outside var/vmail/"),
    (member("/etc/cron.d/x", data=b"x"), "'/etc/cron.d/x' is an absolute path"),
    (member("var/vmail/../../etc/cron.d/x", data=b"x"), "is not a plain relative path"),
    (member("var/vmail/./x", data=b"x"), "is not a plain relative path"),
    (member("var/vmailx/y", data=b"x"), "is outside var/vmail/"),
    (member("var/vmail/sh", mode=0o4755, data=b"\x7fELF"), "mode 4755 has setuid/setgid/sticky"),
    (member("var/vmail/g", mode=0o2755, data=b"x"), "mode 2755 has setuid/setgid/sticky"),
    (member("var/vmail/d/", tarfile.DIRTYPE, 0o3777), "mode 3777 has setuid/setgid/sticky"),
    (member("var/vmail/l", tarfile.SYMTYPE, 0o777, link="/etc/shadow"),
     "a link (to '/etc/shadow')"),
    (member("var/vmail/l", tarfile.SYMTYPE, 0o777, link="../../etc"), "a link (to '../../etc')"),
    (member("var/vmail/h", tarfile.LNKTYPE, 0o600, link="etc/shadow"), "a link (to 'etc/shadow')"),
    (member("var/vmail/h", tarfile.LNKTYPE, 0o600, link="var/vmail/../../etc/shadow"),
     "a link (to 'var/vmail/../../etc/shadow')"),
    (member("var/vmail/h", tarfile.LNKTYPE, 0o600, link="var/vmail/not-archived"),
     "names no file archived before it"),
    (member("var/vmail/null", tarfile.CHRTYPE, 0o666), "a device, fifo or other special file"),
    (member("var/vmail/sda", tarfile.BLKTYPE, 0o660), "a device, fifo or other special file"),
    (member("var/vmail/p", tarfile.FIFOTYPE, 0o600), "a device, fifo or other special file"),
])
def test_one_bad_member_refuses_the_archive_before_anything_is_written(
        tmp_path: Path, bad: tuple[tarfile.TarInfo, bytes], reason: str) -> None:
    # The bad member comes last: the good ones before it must not be written either.
    rc, out, err = run(tmp_path, archive(tmp_path / "a.tar.gz", *GOOD, bad))
    assert rc == 3 and out == ""
    assert err.startswith("mailgov-restore-tar: refused: member ") and reason in err, err
    assert tree(tmp_path / "root") == ["var"]
    assert not (tmp_path / "stage").exists() or tree(tmp_path / "stage") == []


def test_a_symlink_on_the_live_side_is_not_followed(tmp_path: Path) -> None:
    # A store directory replaced by a link elsewhere: the restore must not write through it.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "root/var/vmail").mkdir(parents=True)
    (tmp_path / "root/var/vmail/monre.gov.vn").symlink_to(elsewhere)
    rc, _, err = run(tmp_path, archive(tmp_path / "a.tar.gz", *GOOD))
    assert rc == 3 and "symlink: not followed" in err, err
    assert list(elsewhere.iterdir()) == []


def test_not_a_tar_is_refused_with_a_reason(tmp_path: Path) -> None:
    junk = tmp_path / "a.tar.gz"
    junk.write_bytes(b"age-encryption.org/v1\n-> X25519 ...")
    rc, _, err = run(tmp_path, junk)
    assert rc == 3 and err.startswith("mailgov-restore-tar: refused: cannot read"), err


# --- the signed manifest's contents ------------------------------------------------------


def make_run(tmp_path: Path, host: str = "mail1", run: str = "20261206T000000Z") -> Path:
    d = tmp_path / run
    d.mkdir()
    lines = ["mailgov-backup manifest 1", f"host {host}", f"run {run}"]
    for name, data in [("ldap-data.ldif.age", b"sealed ldif"), ("mail-var_vmail.tar.gz.age", b"m")]:
        (d / name).write_bytes(data)
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}")
    (d / "MANIFEST").write_text("\n".join(lines) + "\n")
    return d


def manifest(d: Path, host: str = "mail1", run: str = "20261206T000000Z") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        rc = rt.main(["manifest", str(d), host, run])
    finally:
        sys.stdout, sys.stderr = old
    return rc, out.getvalue(), err.getvalue()


def test_a_matching_manifest_lists_its_files(tmp_path: Path) -> None:
    rc, out, err = manifest(make_run(tmp_path))
    assert (rc, err) == (0, "")
    assert out.split() == ["ldap-data.ldif.age", "mail-var_vmail.tar.gz.age"]


def test_a_file_that_does_not_match_its_signed_sum_is_refused(tmp_path: Path) -> None:
    d = make_run(tmp_path)
    (d / "ldap-data.ldif.age").write_bytes(b"replaced by the storage host")
    rc, _, err = manifest(d)
    assert rc == 3 and "ldap-data.ldif.age does not match its sum in the signed MANIFEST" in err


@pytest.mark.parametrize(("host", "run", "reason"), [
    ("mail2", "20261206T000000Z", "not host mail2 run 20261206T000000Z"),   # another server's run
    ("mail1", "20261207T000000Z", "not host mail1 run 20261207T000000Z"),   # an old run renamed
])
def test_a_manifest_for_another_host_or_run_is_refused(tmp_path: Path, host: str, run: str,
                                                        reason: str) -> None:
    rc, _, err = manifest(make_run(tmp_path), host, run)
    assert rc == 3 and reason in err, err


@pytest.mark.parametrize("line", [
    "0" * 64 + "  ../../etc/passwd",
    "0" * 64 + "  cron.tar.gz.age",
    "not a sum line",
])
def test_an_unexpected_manifest_line_is_refused(tmp_path: Path, line: str) -> None:
    d = make_run(tmp_path)
    with (d / "MANIFEST").open("a") as fh:
        fh.write(line + "\n")
    rc, _, err = manifest(d)
    assert rc == 3 and "unexpected MANIFEST line" in err, err


def test_hard_link_inside_the_store_is_restored_as_a_copy(tmp_path: Path) -> None:
    """Dovecot's LMTP hard-links a message delivered to several mailboxes; tar archives the
    second as a link to the first. Restored as an independent copy, owned as the others."""
    arc = archive(tmp_path / "a.tar.gz", *GOOD,
                  member("var/vmail/monre.gov.vn/other/", tarfile.DIRTYPE, 0o700),
                  member("var/vmail/monre.gov.vn/other/msg1", tarfile.LNKTYPE, 0o600,
                         link="var/vmail/monre.gov.vn/lthoa/msg1"))
    rc, out, err = run(tmp_path, arc)
    assert (rc, err) == (0, ""), err
    assert out.strip() == "added=3 replaced=0 kept=0"
    first = tmp_path / "root/var/vmail/monre.gov.vn/lthoa/msg1"
    copy = tmp_path / "root/var/vmail/monre.gov.vn/other/msg1"
    assert copy.read_bytes() == first.read_bytes() == b"Subject: one\n\nhello\n"
    assert copy.stat().st_nlink == 1 and copy.stat().st_ino != first.stat().st_ino
    assert copy.stat().st_uid == OWNER.pw_uid
