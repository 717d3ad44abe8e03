"""Every module of the project documents itself the way ansible-doc needs (a module whose
DOCUMENTATION is not YAML has no help page and fails sanity checks) and supports check mode."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MODULES = sorted([*REPO.glob("library/*.py"), *REPO.glob("roles/*/library/*.py")])


def _doc_blocks(path: Path) -> dict[str, str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.targets[0].id: node.value.value for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in {"DOCUMENTATION", "EXAMPLES", "RETURN"}}


def test_there_are_modules() -> None:
    assert len(MODULES) >= 5


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_module_documentation_is_yaml(path: Path) -> None:
    blocks = _doc_blocks(path)
    assert set(blocks) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    doc = yaml.safe_load(blocks["DOCUMENTATION"])
    assert doc["module"] == path.stem
    assert doc.get("short_description")
    for name, option in (doc.get("options") or {}).items():
        assert option.get("description"), f"option {name} has no description"
    yaml.safe_load(blocks["EXAMPLES"])
    yaml.safe_load(blocks["RETURN"])


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_module_supports_check_mode(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if "supports_check_mode=True" not in text:
        # modules built by the shared module_utils helper declare it there
        assert "module_utils.mailgov_reconcile" in text
        helper = (REPO / "module_utils" / "mailgov_reconcile.py").read_text(encoding="utf-8")
        assert "supports_check_mode=True" in helper


FRAGMENTS = sorted((Path(__file__).resolve().parents[2] / "doc_fragments").glob("*.py"))


@pytest.mark.parametrize("path", FRAGMENTS, ids=[p.stem for p in FRAGMENTS])
def test_doc_fragments_are_yaml(path: Path) -> None:
    """ansible-test reads them with the modules; a ': ' in a plain scalar breaks them all."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    blocks = [node.value.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
              and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)]
    assert blocks
    for text in blocks:
        assert isinstance(yaml.safe_load(text), dict)
