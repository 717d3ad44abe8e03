"""The proof framework for the security controls (issue 5): tests against the lab hosts.

Every test here proves ONE control of docs/security.md and says which:

    @pytest.mark.control("TLS-02", "SMTP submission refuses TLS 1.1")
    def test_submission_refuses_tls11(mail1): ...

- Hosts: `mail1`, `mail2`, `client` fixtures are pytest-testinfra hosts of the lab instance
  selected by MAILGOV_LAB_ID (0-31, as lab/lab and inventory/lab), reached over the ssh_config
  that `lab/lab up` writes into the instance's state dir. `infra_host(name)` gives any
  inventory host; `inventory_groups` the inventory's groups.
- Expected values come from the same places the roles read: `policy` is the data file's
  `policy:` section, `role_vars(role, host)` that role's defaults/main.yml overridden by the
  inventory's variables for the host, templates rendered by Ansible itself.
- Attacks run FROM the `client` host (a third machine on the network): `client_run(cmd)`.
- Every test is also marked `lab` (here, not by each file's pytestmark); when the lab is not
  up the tests skip, unless MAILGOV_LAB_REQUIRED=1 (CI), where they fail: a skipped proof must
  never pass for a real one. With MAILGOV_LAB_REQUIRED=1 any other skip fails too, unless
  tests/allowed_gaps.yml allows it with a reason (lab/proofgate.py).
- At the end a table of controls (passed / failed / partial / skipped, with the reason of each
  skipped part and whether the allow-list accepts it) is printed; with
  MAILGOV_CONTROLS_REPORT=FILE it is also written as JSON.

Run: MAILGOV_LAB_ID=N .venv/bin/python -m pytest -m lab tests/infra
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from authprobe import PROVIDER as PROBE_PROVIDER
from authprobe import Probe, make_probe, remove_probe

from lab import labenv, proofgate

REPO = Path(__file__).resolve().parents[2]
INFRA_DIR = Path(__file__).resolve().parent
INVENTORY = Path(os.environ.get("MAILGOV_INVENTORY", REPO / "inventory" / "lab"))
VENV_BIN = REPO / ".venv" / "bin"
LAB_CLI = REPO / "lab" / "lab"
DATA_FILE = Path(os.environ.get("MAILGOV_DATA", REPO / "data" / "mailboxes.yaml"))


def _lab_id() -> int:
    """MAILGOV_LAB_ID: which of the machine's labs to test (lab.labenv, as lab/lab)."""
    try:
        return labenv.lab_id()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


LAB_ID = _lab_id()
LAB_DIR = labenv.lab_dir(REPO, LAB_ID)
SSH_CONFIG = LAB_DIR / "ssh_config"


def lab_missing(reason: str) -> None:
    """Skip (developer without a lab) or fail (CI, MAILGOV_LAB_REQUIRED=1)."""
    if os.environ.get("MAILGOV_LAB_REQUIRED") == "1":
        pytest.fail(f"lab required but not usable: {reason}")
    pytest.skip(f"lab not up: {reason}")


# --- markers, and the controls table -------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    # The `lab` and `control` markers are registered in pyproject.toml (--strict-markers).
    proofgate.register(config)
    config.stash[_RESULTS] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INFRA_DIR not in Path(str(item.fspath)).resolve().parents:
            continue
        # Every infra test needs the lab hosts: `pytest -m lab` selects it.
        item.add_marker(pytest.mark.lab)
        marks = list(item.iter_markers("control"))
        if len(marks) != 1 or len(marks[0].args) != 2:
            # One control per test, with an id and a description: no anonymous proof.
            raise pytest.UsageError(
                f"{item.nodeid}: needs exactly one @pytest.mark.control(ID, DESCRIPTION)")


@dataclass
class ControlResult:
    description: str
    tests: dict[str, str] = field(default_factory=dict)  # nodeid -> passed/failed/skipped

    @property
    def outcome(self) -> str:
        states = set(self.tests.values())
        if "failed" in states:
            return "failed"
        if "passed" in states:
            # A control is passed only when nothing of it failed; skipped parts are shown.
            return "passed" if states == {"passed"} else "partial"
        return "skipped"


_RESULTS = pytest.StashKey[dict[str, ControlResult]]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    mark = item.get_closest_marker("control")
    if mark is None or len(mark.args) != 2:
        return
    cid, desc = str(mark.args[0]), str(mark.args[1])
    results = item.config.stash[_RESULTS]
    ctl = results.setdefault(cid, ControlResult(desc))
    # setup failure/skip, call result, teardown failure: the worst one counts.
    if report.when == "call" or report.outcome != "passed":
        # A skip the proof gate turned into a failure is shown as the skip it was.
        if getattr(report, "mailgov_gap", None) is not None or report.skipped:
            state = "skipped"
        else:
            state = "failed" if report.failed else "passed"
        if ctl.tests.get(item.nodeid) != "failed":
            ctl.tests[item.nodeid] = state


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    results = config.stash.get(_RESULTS, {})
    if not results:
        return
    tr = terminalreporter
    gate = proofgate.gate_of(config)
    all_gaps = gate.gaps if gate is not None else {}

    def gaps_of(ctl: ControlResult) -> dict[str, proofgate.Gap]:
        return {n: all_gaps[n] for n, state in ctl.tests.items()
                if state == "skipped" and n in all_gaps}

    tr.section("security controls")
    width = max(len(c) for c in results)
    counts: dict[str, int] = {}
    for cid in sorted(results, key=_control_sort_key):
        ctl = results[cid]
        counts[ctl.outcome] = counts.get(ctl.outcome, 0) + 1
        n = len(ctl.tests)
        tr.write_line(f"{cid:<{width}}  {ctl.outcome.upper():<7}  {ctl.description}"
                      + (f"  ({n} tests)" if n > 1 else ""))
        if ctl.outcome in ("skipped", "partial"):
            # What is not proven, and why: the allow-list's reason, or that it has none.
            for why in sorted({_gap_line(g) for g in gaps_of(ctl).values()}):
                tr.write_line(f"{'':<{width}}    {why}", red=why.startswith("NOT ALLOWED"))
    tr.write_line(", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
                  + f" of {len(results)} controls")
    unproven = sorted((cid for cid, c in results.items() if c.outcome in ("skipped", "partial")
                       and any(g.allowance is None for g in gaps_of(c).values())),
                      key=_control_sort_key)
    if unproven:
        verdict = ("the run fails" if os.environ.get("MAILGOV_LAB_REQUIRED") == "1"
                   else "MAILGOV_LAB_REQUIRED=1 (CI) fails the run")
        tr.write_line(f"not proven and not on tests/allowed_gaps.yml: {', '.join(unproven)}: "
                      f"{verdict}", red=True, bold=True)
    out = os.environ.get("MAILGOV_CONTROLS_REPORT")
    if out:
        Path(out).write_text(json.dumps(
            {cid: {"description": c.description, "outcome": c.outcome, "tests": c.tests,
                   "gaps": {nodeid: {"skipped": g.message,
                                     "allowed": g.allowance.reason if g.allowance else None}
                            for nodeid, g in sorted(gaps_of(c).items())}}
             for cid, c in sorted(results.items())}, indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8")


def _gap_line(gap: proofgate.Gap) -> str:
    if gap.allowance is None:
        return f"NOT ALLOWED, skipped: {gap.message}"
    return f"allowed, skipped: {gap.message} -- {gap.allowance.reason}"


def _control_sort_key(cid: str) -> tuple[str, int, str]:
    prefix, _, num = cid.rpartition("-")
    return (prefix, int(num), cid) if num.isdigit() else (cid, 0, cid)


# --- the inventory and the hosts -----------------------------------------------------------


@dataclass(frozen=True)
class Inventory:
    hostvars: dict[str, dict[str, Any]]
    groups: dict[str, list[str]]


_INVENTORY_READ: list[Inventory | str] = []  # read once per session: the inventory, or why not


def read_inventory() -> Inventory | str:
    """The lab inventory as `ansible-inventory --list` sees it (variables not templated), or
    the reason it cannot be read. Read once: collection (the host parameters) and the
    `inventory` fixture share it."""
    if not _INVENTORY_READ:
        _INVENTORY_READ.append(_read_inventory())
    return _INVENTORY_READ[0]


def _read_inventory() -> Inventory | str:
    try:
        out = subprocess.run(
            [str(VENV_BIN / "ansible-inventory"), "-i", str(INVENTORY), "--list"],
            cwd=REPO, capture_output=True, text=True, check=False, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"ansible-inventory failed: {exc}"
    if out.returncode != 0:
        return f"ansible-inventory failed: {out.stderr.strip()[:300]}"
    raw = json.loads(out.stdout)
    groups = {g: list(v.get("hosts", [])) for g, v in raw.items()
              if isinstance(v, dict) and g != "_meta"}
    # Children's hosts belong to the parent group too (all -> mailservers -> mail1).
    def members(g: str, seen: frozenset[str] = frozenset()) -> list[str]:
        hosts = list(raw.get(g, {}).get("hosts", []))
        for child in raw.get(g, {}).get("children", []):
            if child not in seen:
                hosts += members(child, seen | {g})
        return sorted(set(hosts))
    return Inventory(raw.get("_meta", {}).get("hostvars", {}),
                     {g: members(g) for g in groups})


@pytest.fixture(scope="session")
def inventory() -> Inventory:
    """The lab inventory as `ansible-inventory --list` sees it (variables not templated)."""
    inv = read_inventory()
    if isinstance(inv, str):
        lab_missing(inv)
    assert isinstance(inv, Inventory)
    return inv


# Attacks run against every mail host the inventory names, not one: a test that takes the
# argument `mail_host` is run once per host of the group (its id is the host's name).
HOST_PARAMETERS = {"mail_host": "mailservers"}
NO_HOSTS = "no-hosts-in-inventory"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for arg, group in HOST_PARAMETERS.items():
        if arg not in metafunc.fixturenames or hasattr(metafunc.module, arg):
            continue  # not used, or the module's own fixture of that name (test_hardening)
        inv = read_inventory()
        names = inv.groups.get(group, []) if isinstance(inv, Inventory) else []
        # No inventory (a developer without a lab) or an empty group: one case that fails (or
        # skips, without MAILGOV_LAB_REQUIRED) at run time with the reason, never zero cases.
        metafunc.parametrize(arg, names or [NO_HOSTS], ids=names or [NO_HOSTS], indirect=True)


@pytest.fixture
def mail_host(request: pytest.FixtureRequest, inventory: Inventory) -> str:
    """One host of the `mailservers` group (the test runs once per host)."""
    name = str(request.param)
    if name == NO_HOSTS:
        group_hosts(inventory, HOST_PARAMETERS["mail_host"])  # fails: the group is empty
    return name


@pytest.fixture(scope="session")
def inventory_groups(inventory: Inventory) -> dict[str, list[str]]:
    """{group: hosts}; `inventory_groups[name]` fails the test for a missing or empty group
    (a membership check against an empty group proves nothing)."""
    return _Groups(inventory)


class _Groups(dict[str, list[str]]):
    def __init__(self, inventory: Inventory) -> None:
        super().__init__(inventory.groups)
        self._inventory = inventory

    def __getitem__(self, group: str) -> list[str]:
        return group_hosts(self._inventory, group)


@pytest.fixture(scope="session")
def host_address(inventory: Inventory) -> Callable[[str], str]:
    """The lab address of an inventory host, for this MAILGOV_LAB_ID."""
    def address(name: str) -> str:
        hv = inventory.hostvars.get(name)
        if hv is None:
            raise KeyError(f"no host {name} in {INVENTORY}")
        # ansible-inventory does not template: the lab's addresses carry "{{ lab_id }}".
        addr = str(hv.get("ansible_host", name)).replace("{{ lab_id }}", str(LAB_ID))
        if "{{" in addr:
            lab_missing(f"cannot resolve the address of {name}: {addr}")
        return addr
    return address


@pytest.fixture(scope="session")
def host_fqdn(inventory: Inventory) -> Callable[[str], str]:
    """The name a mail host serves under (mailgov_fqdn; the lab hosts resolve it)."""
    def fqdn(name: str) -> str:
        hv = inventory.hostvars.get(name)
        if hv is None:
            raise KeyError(f"no host {name} in {INVENTORY}")
        return str(hv.get("mailgov_fqdn", name))
    return fqdn


@pytest.fixture(scope="session")
def infra_host(inventory: Inventory) -> Callable[[str], Any]:
    """A pytest-testinfra host by inventory name, reached with the lab's ssh_config."""
    import testinfra  # imported here: the unit tests do not need it

    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name in cache:
            return cache[name]
        if name not in inventory.hostvars:
            lab_missing(f"inventory {INVENTORY} has no host {name}")
        if not SSH_CONFIG.is_file():
            lab_missing(f"no {SSH_CONFIG} (MAILGOV_LAB_ID={LAB_ID} lab/lab up)")
        host = testinfra.get_host(f"ssh://{name}", ssh_config=str(SSH_CONFIG))
        try:
            ok = host.run("true").rc == 0
        except Exception as exc:  # the backend raises on a refused/unreachable ssh
            ok, why = False, str(exc)
        else:
            why = "ssh returned non-zero"
        if not ok:
            lab_missing(f"{name} not reachable over ssh (lab {LAB_ID}): {why[:200]}")
        cache[name] = host
        return host
    return get


@pytest.fixture(scope="session")
def provider(inventory: Inventory) -> str:
    """The directory provider (writes go there): the first host of `directory_provider`."""
    name = group_hosts(inventory, "directory_provider")[0]
    # authprobe makes the throw-away mailboxes on its PROVIDER as root.
    assert name == PROBE_PROVIDER, f"authprobe.PROVIDER is {PROBE_PROVIDER}, the inventory's {name}"
    return name


@pytest.fixture(scope="session")
def mail1(infra_host: Callable[[str], Any]) -> Any:
    return infra_host("mail1")


@pytest.fixture(scope="session")
def mail2(infra_host: Callable[[str], Any]) -> Any:
    return infra_host("mail2")


@pytest.fixture(scope="session")
def client(infra_host: Callable[[str], Any]) -> Any:
    return infra_host("client")


@pytest.fixture(scope="session")
def mail_hosts(inventory: Inventory, infra_host: Callable[[str], Any]) -> dict[str, Any]:
    """Every host of the `mailservers` group: {name: testinfra host}. Never empty: the controls
    that loop over it would otherwise pass having checked nothing."""
    names = group_hosts(inventory, "mailservers")
    return {name: infra_host(name) for name in names}


def group_hosts(inventory: Inventory, group: str) -> list[str]:
    """The hosts of an inventory group; a missing or empty group fails the test that needs it."""
    names = inventory.groups.get(group, [])
    if not names:
        pytest.fail(f"inventory {INVENTORY} has no hosts in group {group!r}: the tests that "
                    f"check every host of {group} would pass having checked nothing",
                    pytrace=False)
    return names


# --- running commands ----------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str


def lab_ssh(host: str, command: str, timeout: int = 120) -> Result:
    """`lab/lab ssh HOST COMMAND` on this instance (the environment carries MAILGOV_LAB_ID)."""
    try:
        out = subprocess.run(
            [str(LAB_CLI), "ssh", host, command], cwd=REPO, capture_output=True, text=True,
            check=False, timeout=timeout, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        return Result(124, str(exc.stdout or ""), f"timed out after {timeout}s")
    return Result(out.returncode, out.stdout, out.stderr)


@pytest.fixture(scope="session")
def host_run(inventory: Inventory) -> Callable[..., Result]:
    """Run a shell command as root on a lab host."""
    def run(host: str, command: str, timeout: int = 120) -> Result:
        assert host in inventory.hostvars, f"unknown lab host {host}"
        return lab_ssh(host, command, timeout)
    return run


@pytest.fixture(scope="session")
def client_run(client: Any) -> Callable[..., Result]:
    """Run a command on the `client` host: attacks come from a third machine on the network.

    `cmd` is a shell string, or a list of arguments (quoted for you).
    """
    def run(cmd: str | list[str], timeout: int = 120) -> Result:
        line = cmd if isinstance(cmd, str) else shlex.join(cmd)
        return lab_ssh("client", line, timeout)
    return run


# --- expected values: the data and the roles' variables -----------------------------------


@pytest.fixture(scope="session")
def data() -> dict[str, Any]:
    if not DATA_FILE.is_file():
        pytest.fail(f"no data file {DATA_FILE}")
    return yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def policy(data: dict[str, Any]) -> dict[str, Any]:
    """The data's `policy:` section: the numbers the roles must enforce."""
    return data["policy"]


def _adhoc(host: str, module: str, args: str, extra_file: str | None, cache_dir: str,
           local: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
           "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
           # Facts from the `setup` call are reused by the `debug` call through this cache.
           "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.jsonfile",
           "ANSIBLE_CACHE_PLUGIN_CONNECTION": cache_dir, "ANSIBLE_GATHERING": "smart"}
    cmd = [str(VENV_BIN / "ansible"), host, "-i", str(INVENTORY),
           # playbook_dir as in a real run: defaults say "{{ playbook_dir }}/../data/...".
           "--playbook-dir", str(REPO / "playbooks"), "-m", module, "-a", args]
    if local:
        cmd += ["-c", "local"]
    if extra_file:
        cmd += ["-e", f"@{extra_file}"]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False,
                          timeout=120, env=env)


_FACTS_DIR = tempfile.mkdtemp(prefix="mailgov-infra-facts-")  # one fact cache per session
_FACTS_GATHERED: set[str] = set()


def _render_role_vars(role: str, host: str) -> dict[str, Any]:
    defaults_file = REPO / "roles" / role / "defaults" / "main.yml"
    if not defaults_file.is_file():
        raise FileNotFoundError(f"role {role} has no defaults/main.yml")
    defaults = yaml.safe_load(defaults_file.read_text(encoding="utf-8")) or {}
    inv = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", str(INVENTORY), "--host", host],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=60,
    )
    if inv.returncode != 0:
        raise RuntimeError(f"ansible-inventory --host {host}: {inv.stderr.strip()[:300]}")
    inv_vars = json.loads(inv.stdout)
    # The inventory's variables win over the role's defaults, as in a play; passing the
    # defaults as extra vars would invert that, so only names the inventory lacks are passed.
    extra = {k: v for k, v in defaults.items() if k not in inv_vars}
    # Secrets stay unrendered: a password lookup would create (or print) the secret.
    raw_only = {k for k, v in defaults.items() if "password" in json.dumps(v)
                and "lookup(" in json.dumps(v)}
    # Required inputs have no default: the inventory maps them (group_vars/all/mailgov.yml).
    # Secrets among them are not rendered either.
    mapped = {k for k in inv_vars if k.startswith(f"{role}__") and k not in defaults}
    raw_only |= {k for k in mapped if "password" in k}
    names = sorted(k for k in set(defaults) | mapped if k not in raw_only)
    result: dict[str, Any] = {k: defaults.get(k, inv_vars.get(k)) for k in raw_only}
    tmp = _FACTS_DIR
    if host not in _FACTS_GATHERED:
        # Facts (some defaults use ansible_facts['fqdn']); a host that is down has none.
        _adhoc(host, "ansible.builtin.setup", "gather_subset=min,network", None, tmp, False)
        _FACTS_GATHERED.add(host)
    with tempfile.TemporaryDirectory() as work:
        extra_file = os.path.join(work, "extra.json")
        Path(extra_file).write_text(json.dumps(extra), encoding="utf-8")

        def render(batch: list[str]) -> dict[str, Any] | None:
            expr = "{{ dict(" + ", ".join(f"{n}={n}" for n in batch) + ") | to_json }}"
            out = _adhoc(host, "ansible.builtin.debug", f"msg={expr}", extra_file, tmp, True)
            try:
                msg = json.loads(out.stdout[out.stdout.index("{"):])["msg"]
            except ValueError:
                return None
            return json.loads(msg) if isinstance(msg, str) else msg

        whole = render(names) if names else {}
        if whole is not None:
            result.update(whole)
        else:
            # One variable cannot be rendered here (e.g. needs a fact of a host that is
            # down): render one by one, keep the raw default for the ones that fail.
            for n in names:
                one = render([n])
                result[n] = one[n] if one is not None else defaults[n]
    return result


@pytest.fixture(scope="session")
def role_vars() -> Callable[..., dict[str, Any]]:
    """role_vars(role, host="mail1"): the role's variables as a play on that host sees them.

    Defaults from roles/ROLE/defaults/main.yml, overridden by the inventory, rendered by
    Ansible (so `{{ ... }}` values such as lab paths come out as the role uses them).
    """
    cache: dict[tuple[str, str], dict[str, Any]] = {}

    def get(role: str, host: str = "mail1") -> dict[str, Any]:
        if (role, host) not in cache:
            try:
                cache[(role, host)] = _render_role_vars(role, host)
            except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
                pytest.fail(f"role_vars({role!r}, {host!r}): {exc}")
        return cache[(role, host)]
    return get


# --- shared by the attack tests ---------------------------------------------------------


@pytest.fixture(scope="module")
def org(data: dict[str, Any]) -> dict[str, str]:
    """The organisation's base DN and mail domain (what throw-away probes need)."""
    return {"base_dn": data["organization"]["base_dn"], "domain": data["organization"]["domain"]}


# fail2ban's jails on a host, read on the host itself (the set differs if a role adds one).
_JAILS = ("$(fail2ban-client status 2>/dev/null | sed -n 's/.*Jail list:[[:space:]]*//p' "
          "| tr ',' ' ')")


class Fail2banBudget:
    """The client host's standing with fail2ban on every mail host, shared by the tests.

    The attack tests fail logins on purpose, and fail2ban would ban the client for them: a ban
    (or failures counted towards one, kept for findtime) left by one test, module or host must
    not make another fail for the wrong reason, nor a second run of the same modules. So:
    - `exempt()`/`release()`: the client is in every jail's ignoreip while any holder needs
      it (a module, or a test proving the directory's lockout); failures made meanwhile are
      never counted. The first holder also unbans it; the last one removes the exemption and
      unbans it again, so the next module starts with no ban.
    - `armed()`: a test that proves the ban itself (F2B-) lifts the exemption for its
      duration, starting unbanned, and unbans it afterwards.
    """

    def __init__(self, run: Callable[..., Result], hosts: list[str], ip: str) -> None:
        self.run, self.hosts, self.ip = run, hosts, ip
        self.depth = 0

    def _on_every_host(self, per_jail: str) -> None:
        script = (f"command -v fail2ban-client >/dev/null || exit 0; for j in {_JAILS}; do "
                  f"{per_jail}; done")
        # The hosts at once: this runs at every module's start and end.
        with ThreadPoolExecutor(len(self.hosts)) as pool:
            results = list(pool.map(lambda h: (h, self.run(h, script)), self.hosts))
        for host, res in results:
            assert res.rc == 0, f"fail2ban on {host}: {res.stderr.strip()[-300:]}"

    def _unban(self) -> str:
        return f"fail2ban-client set $j unbanip {self.ip} >/dev/null 2>&1; true"

    def exempt(self) -> None:
        if self.depth == 0:
            self._on_every_host(f"{self._unban()}; fail2ban-client set $j addignoreip "
                                f"{self.ip} >/dev/null")
        self.depth += 1

    def release(self) -> None:
        self.depth -= 1
        if self.depth == 0:
            self._on_every_host(f"fail2ban-client set $j delignoreip {self.ip} >/dev/null "
                                f"2>&1; {self._unban()}")

    @contextmanager
    def armed(self) -> Iterator[None]:
        held, self.depth = self.depth, 0
        self._on_every_host(f"fail2ban-client set $j delignoreip {self.ip} >/dev/null 2>&1; "
                            f"{self._unban()}")
        try:
            yield
        finally:
            self._on_every_host(self._unban())
            self.depth = 0
            if held:
                self.exempt()
                self.depth = held


@pytest.fixture(scope="session")
def fail2ban(host_run: Callable[..., Result], inventory: Inventory,
             host_address: Callable[[str], str]) -> Fail2banBudget:
    return Fail2banBudget(host_run, group_hosts(inventory, "mailservers"),
                          host_address("client"))


@pytest.fixture(scope="module")
def fail2ban_budget(fail2ban: Fail2banBudget) -> Iterator[None]:
    """The module's own budget (`pytestmark = pytest.mark.usefixtures("fail2ban_budget")`):
    the client is exempt from every jail on every mail host while the module runs, and the
    module leaves it unbanned and not exempt. Tests proving a ban use `fail2ban_armed`."""
    fail2ban.exempt()
    try:
        yield
    finally:
        fail2ban.release()


@pytest.fixture
def fail2ban_armed(fail2ban: Fail2banBudget) -> Iterator[None]:
    """For the test proving a ban (F2B-): fail2ban counts the client's failures, starting
    unbanned; unbanned again afterwards, and the module's exemption restored."""
    with fail2ban.armed():
        yield


@pytest.fixture
def no_fail2ban_for_client(fail2ban: Fail2banBudget) -> Iterator[None]:
    """Deliberate failed logins from the client must not get it banned while a test proves
    what the directory does (lockout, expiry): the client is exempt in every jail meanwhile."""
    fail2ban.exempt()
    try:
        yield
    finally:
        fail2ban.release()


@pytest.fixture
def probes(host_run: Callable[..., Any], org: dict[str, str], mail1: Any) -> Iterator[
        Callable[..., Probe]]:
    """probes(tag, name=None): a new throw-away mailbox (authprobe.make_probe); every one made
    in the test is removed afterwards."""
    made: list[Probe] = []

    def make(tag: str, name: str | None = None) -> Probe:
        p = make_probe(host_run, org["base_dn"], org["domain"], tag, name=name)
        made.append(p)
        return p

    try:
        yield make
    finally:
        for p in made:
            remove_probe(host_run, p)
