"""No secret in the output of a full converge at -vvv (LOG-03, issue 12 finding 4).

`scripts/test` runs its idempotence converge with `scripts/converge --idempotent --vvv-log
FILE` (FILE: `converge-vvv.log` in the lab's state dir): the whole of site.yml at -vvv, every
module's arguments and results as Ansible prints them, written 0600 to that file instead of
the console. This test reads the log and looks in it for every secret the run handles:

- the service accounts' passwords (the lab's clear copies in `<lab dir>/secrets/`) and every
  value of the production-shaped inventory's vault (decrypted with the vault password file);
- the vault password itself;
- the private keys: the hosts' TLS keys and the CA key handed over (`<lab dir>/pki/*.key`),
  each mail host's DKIM keys (`/etc/dkimkeys/<domain>/*.private`), its backup SSH key, the password
  page's CSRF key;
- the initial passwords handed over, when the run issued any and the lab holds a focal point
  identity to open them (age files in the credentials dir).

A key is looked for by every base64 line of its body (each of them is secret), a password as
itself. The log must be a full -vvv run (the recap of every mail host, ssh connection lines),
or the test fails: an empty or short log proves nothing.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import labenv

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
INVENTORY = Path(os.environ.get("MAILGOV_INVENTORY", REPO / "inventory" / "lab"))
LAB_DIR = labenv.lab_dir(REPO, labenv.lab_id())
LOG = Path(os.environ.get("MAILGOV_CONVERGE_VVV_LOG", LAB_DIR / "converge-vvv.log"))
# A PEM body line, or a whole one-line secret: shorter pieces are not worth matching (and
# could match by chance).
MIN_PIECE = 16


def pem_pieces(text: str) -> list[str]:
    """The base64 lines of every PEM block in text (the secret body of a private key)."""
    pieces = []
    for block in re.findall(r"-----BEGIN [A-Z ]*PRIVATE KEY-----(.*?)-----END", text, re.S):
        pieces += [line.strip() for line in block.splitlines() if len(line.strip()) >= MIN_PIECE]
    return pieces


def json_strings(value: Any) -> list[str]:
    """The string values in a JSON document that are not addresses (those are not secret)."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in json_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in json_strings(v)]
    return [value] if isinstance(value, str) and "@" not in value and len(value) >= 8 else []


def vault_values() -> dict[str, str]:
    """Every value of the inventory's vault.yml (name -> clear value); {} without a vault."""
    vault = INVENTORY / "group_vars" / "all" / "vault.yml"
    pass_file = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    if not vault.is_file() or not pass_file:
        return {}
    out = subprocess.run([str(VENV_BIN / "ansible-vault"), "view", "--vault-password-file",
                          pass_file, str(vault)], capture_output=True, text=True, cwd=REPO,
                         check=False)
    assert out.returncode == 0, f"cannot open {vault}: {out.stderr.strip()[:300]}"
    values = yaml.safe_load(out.stdout) or {}
    found = {f"vault {k}": str(v) for k, v in values.items()}
    found["vault password"] = Path(pass_file).read_text(encoding="utf-8").strip()
    return found


def handed_over_passwords() -> dict[str, str]:
    """Initial passwords in the run's age handover files, if this lab can open them."""
    identities = sorted(LAB_DIR.glob("**/*focal*.key")) + sorted(LAB_DIR.glob("**/*.agekey"))
    found: dict[str, str] = {}
    for artifact in sorted(LAB_DIR.glob("**/credentials/*.age")):
        for ident in identities:
            out = subprocess.run(["age", "-d", "-i", str(ident), str(artifact)],
                                 capture_output=True, text=True, check=False)
            if out.returncode == 0:
                for n, pw in enumerate(re.findall(r"(?im)^\s*(?:password|mat khau)\S*\s*[:=]\s*"
                                                  r"(\S{8,})\s*$", out.stdout)):
                    found[f"initial password {artifact.name}#{n}"] = pw
                break
    return found


@pytest.fixture(scope="module")
def secrets_by_name(host_run: Callable[..., Any], inventory_groups: dict[str, list[str]],
                    role_vars: Callable[..., dict[str, Any]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted((LAB_DIR / "secrets").glob("*")):
        if path.suffix == ".json":  # the lab's test mailboxes: {address: password}
            for i, value in enumerate(json_strings(json.loads(path.read_text("utf-8")))):
                found[f"secret {path.name}#{i}"] = value
        elif path.is_file():
            found[f"secret {path.name}"] = path.read_text(encoding="utf-8").strip()
    found.update(vault_values())
    for path in sorted((LAB_DIR / "pki").glob("*.key")):
        for i, piece in enumerate(pem_pieces(path.read_text(encoding="utf-8"))):
            found[f"key {path.name}#{i}"] = piece
    for host in inventory_groups["mailservers"]:
        backup_key = role_vars("backup", host).get("backup__ssh_key", "")
        selfservice_secret = "/etc/mailgov/selfservice.secret"
        out = host_run(host, "cat /etc/dkimkeys/*/*.private "
                       + (shlex.quote(backup_key) if backup_key else "") + " 2>/dev/null; "
                       f"echo; base64 -w0 {selfservice_secret} 2>/dev/null; "
                       f"echo; cat {selfservice_secret} 2>/dev/null")
        pieces = pem_pieces(out.stdout)
        assert pieces, f"{host}: no DKIM private key found: nothing to look for"
        for i, piece in enumerate(pieces):
            found[f"{host} private key#{i}"] = piece
        tail = out.stdout.rsplit("-----", 1)[-1].split("\n")
        for i, line in enumerate(t.strip() for t in tail):
            if len(line) >= MIN_PIECE:
                found[f"{host} password page key#{i}"] = line
    found.update(handed_over_passwords())
    # Passwords are looked for whatever their length (8 and more); pieces of keys from 16.
    return {k: v for k, v in found.items() if len(v) >= MIN_PIECE or (len(v) >= 8 and k.startswith(
        ("secret ", "vault ", "initial password")))}


@pytest.mark.control("LOG-03", "A full converge at -vvv prints no secret: no service or vault "
                     "password, no private key line (TLS, CA, DKIM, backup), no handed-over "
                     "initial password appears in its log")
def test_vvv_converge_log_has_no_secret(secrets_by_name: dict[str, str],
                                        inventory_groups: dict[str, list[str]]) -> None:
    if not LOG.is_file():
        pytest.fail(f"no -vvv converge log {LOG}: run scripts/converge --idempotent "
                    f"--vvv-log {LOG} (scripts/test does) before this test")
    text = LOG.read_text(encoding="utf-8", errors="replace")
    # The log is a whole -vvv run: connection lines, module results, every mail host's recap.
    assert "ESTABLISH SSH CONNECTION" in text, f"{LOG} is not a -vvv log"
    for host in inventory_groups["mailservers"]:
        assert re.search(rf"(?m)^{re.escape(host)}\s+:\s+ok=\d+", text), \
            f"{LOG} has no recap for {host}: not a full converge"
    # What must have been found to look for, or the test would pass having checked nothing.
    service = [n for n in secrets_by_name if n.startswith(("secret ldap-", "vault vault_ldap"))]
    assert len(service) >= 5, f"service passwords found: {service}"
    # LDIF folds long lines (a line break and a space), and a result may be shown as a JSON
    # string ("\\n ") or a YAML block (a line break and the indentation): a secret cut by a
    # fold is still a leak, so also look in the log with every such break removed.
    views = (text, text.replace("\\n ", ""), re.sub(r"\n\s+", "", text))
    leaked = sorted(name for name, value in secrets_by_name.items()
                    if any(value in view for view in views))
    # Names only: the values stay out of the test report.
    assert not leaked, (f"{len(leaked)} secret(s) of {len(secrets_by_name)} appear in {LOG}: "
                        + ", ".join(leaked))
