"""What the directory benchmarks share: the directory they run against, and the data file.

Two targets, the same for every benchmark:

* a lab (``MAILGOV_LAB_ID=N``): the provider at 10.210.N.11 as ``cn=mailgov`` over StartTLS,
  exactly as the reconciler runs (overlays, access log, replication included);
* ``--local-slapd``: a throwaway slapd of this machine on a Unix socket under ``--work``
  (root binds with SASL EXTERNAL, the rootdn, as ``ldapi://`` does on the provider), with the
  project's two schemas taken from roles/openldap/vars/main.yml and the Debian ones. No
  overlay: both sides of a comparison meet the same server, so the ratio stays fair, but the
  absolute figures are lower than a lab's. Needs the ``slapd`` package (/usr/sbin/slapd).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lab import labenv  # noqa: E402
from mailgov.live import LiveError, connect  # noqa: E402
from mailgov.validate import validate  # noqa: E402
from tools.generate import write as generate_file  # noqa: E402

SLAPD = "/usr/sbin/slapd"
DEBIAN_SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
ROOT_DN = "gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth"


@dataclass(frozen=True)
class Target:
    """Where a benchmark writes: ``connect()`` gives a bound ldap3 connection."""

    label: str
    uri: str
    bind_dn: str | None
    password: str | None
    ca: str | None
    server_pid: int | None = None  # a local slapd: its CPU time can be read

    def connect(self, timeout: float = 30) -> Any:
        return connect(self.uri, self.bind_dn, self.password, self.ca, timeout)

    def server_cpu(self) -> float:
        """CPU seconds the local slapd used so far (0 for a lab: not readable from here)."""
        if self.server_pid is None:
            return 0.0
        fields = Path(f"/proc/{self.server_pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def cpu(target: Target) -> Iterator[dict[str, float]]:
    """Wall, client CPU and server CPU seconds of the block (filled in on exit): on a shared
    machine the CPU figures move much less with the load than the wall clock."""
    out: dict[str, float] = {}
    w, c, s = time.perf_counter(), time.process_time(), target.server_cpu()
    try:
        yield out
    finally:
        out.update(wall=time.perf_counter() - w, client=time.process_time() - c,
                   server=target.server_cpu() - s)


def lab_target(base_dn: str) -> Target:
    try:
        lab_id = labenv.lab_id()  # the instance and state dir exactly as lab/lab picks them
    except ValueError as exc:
        sys.exit(f"bench: {exc}")
    state = labenv.lab_dir(REPO, lab_id)
    secret = state / "secrets" / "ldap-mailgov"
    if not secret.is_file():
        sys.exit(f"bench: no {secret}; bring the lab up and converge it first "
                 f"(MAILGOV_LAB_ID={lab_id}), or use --local-slapd")
    return Target(f"lab {lab_id}", f"ldap://10.210.{lab_id}.11",
                  f"cn=mailgov,ou=services,{base_dn}", secret.read_text().strip(),
                  str(state / "pki" / "ca.crt"))


def lab() -> dict[str, str]:
    """The lab target as the older benchmarks read it (bench_reconcile)."""
    t = lab_target("dc=monre,dc=gov,dc=vn")
    return {"uri": t.uri, "password": t.password or "", "ca": t.ca or "",
            "id": t.label.split()[-1]}


def _project_schema() -> str:
    """postfix-book and mailgov's schema in slapd.conf form, from the role's variables."""
    vars_ = yaml.safe_load((REPO / "roles/openldap/vars/main.yml").read_text(encoding="utf-8"))
    oid = vars_["openldap__mailgov_oid"]
    out = []
    for name in ("openldap__postfix_book_schema", "openldap__mailgov_schema"):
        defs = vars_[name]
        for text in defs["olcAttributeTypes"]:
            out.append("attributetype " + text.replace("{{ openldap__mailgov_oid }}", oid))
        for text in defs["olcObjectClasses"]:
            out.append("objectclass " + text.replace("{{ openldap__mailgov_oid }}", oid))
    return "\n".join(out) + "\n"


@contextmanager
def local_slapd(work: Path, base_dn: str, nosync: bool = False,
                name: str = "slapd") -> Iterator[Target]:
    """A slapd of its own under ``work/<name>`` (kept between runs: a loaded directory is
    loaded once; one per data file, so another file's entries never meet this one's), stopped
    on exit. ``nosync``: no fsync per write (dbnosync), so the figures
    show the client's own cost rather than the disk's."""
    if not Path(SLAPD).is_file():
        sys.exit(f"bench: {SLAPD} is missing (install the slapd package) or use a lab")
    top = work / name
    db = top / "db"
    db.mkdir(parents=True, exist_ok=True)
    sock = top / "ldapi"
    schema = top / "project.schema"
    schema.write_text(_project_schema(), encoding="utf-8")
    conf = top / "slapd.conf"
    conf.write_text(
        "".join(f"include /etc/ldap/schema/{s}.schema\n" for s in DEBIAN_SCHEMAS)
        + f"include {schema}\n"
        + f"pidfile {top}/slapd.pid\n"
        # ppolicy: its schema (pwdPolicySubentry on administrators' entries)
        + "modulepath /usr/lib/ldap\nmoduleload back_mdb\nmoduleload ppolicy\n"
        + "sizelimit unlimited\n"
        + f"database mdb\nsuffix \"{base_dn}\"\nrootdn \"{ROOT_DN}\"\n"
        + f"directory {db}\nmaxsize 4294967296\n" + ("dbnosync\n" if nosync else "")
        + "index objectClass eq\nindex uid,mail,mailAlias eq\noverlay ppolicy\n",
        encoding="utf-8")
    uri = "ldapi://" + quote(str(sock), safe="")
    if sock.exists():
        sock.unlink()
    proc = subprocess.Popen([SLAPD, "-d", "0", "-f", str(conf), "-h", uri],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        target = Target(f"local slapd {sock}", uri, None, None, None, proc.pid)
        deadline = time.monotonic() + 30
        while True:  # the socket exists before slapd listens on it: wait for a bind
            if proc.poll() is not None:
                err = proc.stderr.read().decode()[-800:] if proc.stderr else ""
                sys.exit(f"bench: slapd did not start: {err}")
            try:
                c = target.connect()
                break
            except LiveError:
                if time.monotonic() > deadline:
                    sys.exit("bench: slapd did not answer within 30 s")
                time.sleep(0.05)
        if not c.search(base_dn, "(objectClass=*)", search_scope="BASE"):
            dc = base_dn.split(",", 1)[0].split("=", 1)[1]
            if not c.add(base_dn, ["top", "dcObject", "organization"],
                         {"dc": dc, "o": dc}):
                sys.exit(f"bench: cannot add {base_dn}: {c.result}")
        c.unbind()
        yield target
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def data_file(count: int, seed: int, work: Path) -> Path:
    """The generated data file of ``count`` mailboxes (made once, kept in ``work``)."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"mailboxes-{count}-{seed}.yaml"
    if not path.is_file():
        print(f"generating {count} mailboxes → {path}")
        generate_file(count, seed, path)
    return path


def base_dn_of(path: Path) -> str:
    d = validate(path).directory
    if d is None:
        sys.exit(f"bench: {path} does not validate")
    return d.organization.base_dn


@contextmanager
def target(args: Any, base_dn: str, name: str = "slapd") -> Iterator[Target]:
    """The lab (MAILGOV_LAB_ID), or ``--local-slapd`` (its database ``work/<name>``)."""
    if getattr(args, "local_slapd", False):
        with local_slapd(Path(args.work), base_dn, getattr(args, "nosync", False), name) as t:
            yield t
    else:
        yield lab_target(base_dn)


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out
