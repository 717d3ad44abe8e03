"""Vars plugin mailgov_data: the role facts of the validated data file, as ``mailgov_facts``."""
from __future__ import annotations

import os
from typing import Any

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.inventory.group import Group
from ansible.plugins.vars import BaseVarsPlugin

try:
    from mailgov.role_vars import DataProblems, load_facts
except ImportError as exc:  # reported when the plugin runs, not at import
    IMPORT_ERROR: ImportError | None = exc
else:
    IMPORT_ERROR = None

DOCUMENTATION = r"""
name: mailgov_data
short_description: Validate the data file once and give its role facts to every host
description:
  - Validates the mailgov data file (C(mailgov validate)) when the inventory is loaded, before
    any play runs, and defines C(mailgov_facts) on the C(all) group - the organization, the
    policy numbers the services enforce and the unit mailboxes' delegates, as
    C(mailgov export-vars) prints them.
  - The inventory maps these facts onto each role's documented variables
    (C(inventory/*/group_vars/all/mailgov.yml)); no role reads the data file.
  - Data with problems stops the run with the located problems (C(PATH:LINE:COL RULE)).
  - Runs on the controller inside ansible-playbook, which must have the mailgov package (the
    project's venv).
requirements:
  - the mailgov package (the project's venv)
options:
  data_file:
    description:
      - The data file. A relative path is taken from the directory of the Ansible config file
        in use (the repository's C(ansible.cfg)), else from the current directory.
    type: path
    default: data/mailboxes.yaml
    env:
      - name: MAILGOV_DATA
    ini:
      - section: mailgov
        key: data_file
  stage:
    ini:
      - key: stage
        section: vars_mailgov_data
    env:
      - name: ANSIBLE_VARS_PLUGIN_STAGE
extends_documentation_fragment:
  - vars_plugin_staging
"""

# (path, mtime_ns, size) -> facts: the plugin is asked once per group and inventory source;
# the file is validated once per process.
_CACHE: dict[tuple[str, int, int], dict[str, Any]] = {}


def _resolve(path: str) -> str:
    if os.path.isabs(path):
        return path
    base = os.path.dirname(C.CONFIG_FILE) if C.CONFIG_FILE else os.getcwd()
    return os.path.normpath(os.path.join(base, path))


class VarsModule(BaseVarsPlugin):
    REQUIRES_ENABLED = True

    def get_vars(self, loader: Any, path: str, entities: Any, cache: bool = True) -> dict:
        super().get_vars(loader, path, entities)
        if not isinstance(entities, list):
            entities = [entities]
        if not any(isinstance(e, Group) and e.name == "all" for e in entities):
            return {}
        if IMPORT_ERROR is not None:
            raise AnsibleError(f"mailgov_data: cannot import the mailgov package ({IMPORT_ERROR}); "
                               "run ansible-playbook from the project's venv (make bootstrap)")
        data_file = _resolve(str(self.get_option("data_file")))
        try:
            st = os.stat(data_file)
        except OSError as exc:
            raise AnsibleError(f"mailgov_data: cannot read the data file {data_file}: "
                               f"{exc.strerror}") from None
        key = (data_file, st.st_mtime_ns, st.st_size)
        if key not in _CACHE:
            try:
                _CACHE[key] = load_facts(data_file)
            except DataProblems as exc:
                raise AnsibleError(f"mailgov_data: {exc}") from None
        return {"mailgov_facts": _CACHE[key]}
