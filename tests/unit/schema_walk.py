"""Every subschema of a JSON Schema with where it is, for the tests that check a property
of all of them (a description, a length limit)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def subschemas(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(path like ``/$defs/mailbox/properties/name``, subschema), depth first."""
    if isinstance(node, dict):
        yield where, node
        for key, sub in node.items():
            yield from subschemas(sub, f"{where}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from subschemas(sub, f"{where}[{i}]")
