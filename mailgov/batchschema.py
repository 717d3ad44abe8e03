"""The schema check of a valid file, a column at a time: yes ("every value is valid") or
"not shown" (the caller then runs the record-by-record checks, which report the errors).

fastjsonschema's generated code checks 50,000 mailboxes one record and one field at a time,
in Python: 0.45 s of the 1.5 s validate took on the 50,000-mailbox file. The records of a
list share one schema, so the same check can run over all values of a field at once, mostly
in C: the keys of every record counted once (required and unknown fields from the counts),
each field's values gathered into a column, types by ``set(map(type, column))``, patterns,
lengths and enums on the distinct values only (ids, dates, requests and units repeat),
ranges by ``min``/``max``. 0.06 s for the same file.

Only a "yes" is trusted, and it means exactly what jsonschema's answer
(``validate.strict_validator()``: strict integers, patterns anchored at the true end) would
mean: every check here is as strict as that one or stricter. Anything it does not know how
to decide exactly (a keyword it does not implement, overlapping ``oneOf`` branches, enums of
mixed types, unhashable list items under ``uniqueItems``) makes the answer "not shown", never "yes".
tests/unit/test_batchschema.py compares the two on the corpus and on random mutations.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from itertools import chain
from operator import itemgetter
from typing import Any

#: JSON Schema type -> the exact Python types of loaded data (bool is not an integer).
_TYPES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "integer": frozenset({int}),
    "number": frozenset({int, float}),
    "boolean": frozenset({bool}),
    "object": frozenset({dict}),
    "array": frozenset({list}),
    "null": frozenset({type(None)}),
}
#: Keywords that only annotate (no effect on validity).
_ANNOTATIONS = frozenset({"description", "title", "examples", "default", "$comment",
                          "$schema", "$defs", "deprecated", "readOnly", "writeOnly"})
_KNOWN = _ANNOTATIONS | {
    "type", "enum", "const", "properties", "required", "additionalProperties",
    "patternProperties", "items", "minItems", "maxItems", "uniqueItems", "pattern",
    "minLength", "maxLength", "minimum", "maximum", "oneOf", "$ref"}


class _Undecided(Exception):
    """The batch check cannot decide this exactly: say "not shown"."""


@cache
def _end_anchored(pattern: str) -> re.Pattern[str]:
    # Same rule as validate._end_anchored (ECMA-262's `$` is the true end of the text).
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


class BatchCheck:
    """``BatchCheck(schema)(data)`` is True only if ``data`` is valid against ``schema``."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self._root = schema
        self._defs: dict[str, Any] = schema.get("$defs", {})

    def __call__(self, data: Any) -> bool:
        try:
            return self._check(self._root, [data])
        except _Undecided:
            return False

    def _resolve(self, schema: Any) -> dict[str, Any]:
        for _ in range(100):  # a loop of references is not a schema to trust
            if not isinstance(schema, dict):
                raise _Undecided  # true/false schemas: not used by the data file's schema
            ref = schema.get("$ref")
            if ref is None:
                return schema
            if not ref.startswith("#/$defs/") or set(schema) - _ANNOTATIONS - {"$ref"}:
                raise _Undecided  # other documents, or keywords beside a $ref
            try:
                schema = self._defs[ref[len("#/$defs/"):]]
            except KeyError:
                raise _Undecided from None
        raise _Undecided

    def _check(self, schema: Any, values: list[Any]) -> bool:
        """Is every one of ``values`` valid against ``schema``?"""
        if not values:
            return True
        s = self._resolve(schema)
        if not s.keys() <= _KNOWN:
            raise _Undecided
        if "oneOf" in s and not self._one_of(s["oneOf"], values):
            return False
        types = set(map(type, values))
        if "type" in s:
            allowed: frozenset[type] = frozenset()
            for name in ([s["type"]] if isinstance(s["type"], str) else s["type"]):
                if name not in _TYPES:
                    raise _Undecided
                allowed |= _TYPES[name]
            if not types <= allowed:
                return False
        if "enum" in s or "const" in s:
            choices = s["enum"] if "enum" in s else [s["const"]]
            if not self._in_enum(choices, values, types):
                return False
        if types & {str} and not self._strings(s, values if types == {str} else
                                               [v for v in values if type(v) is str]):
            return False
        if types & {int, float} and not self._numbers(s, values if types <= {int, float} else
                                                      [v for v in values
                                                       if type(v) in (int, float)]):
            return False
        if dict in types and not self._objects(s, values if types == {dict} else
                                               [v for v in values if type(v) is dict]):
            return False
        return list not in types or self._arrays(s, values if types == {list} else
                                                 [v for v in values if type(v) is list])

    def _one_of(self, branches: list[Any], values: list[Any]) -> bool:
        # Decided only when every branch states its types and no two share one: then a
        # value can pass at most the branch of its type, and "exactly one" is that branch.
        by_type: dict[type, Any] = {}
        for branch in branches:
            names = self._resolve(branch).get("type")
            names = [names] if isinstance(names, str) else names
            if not names or any(n not in _TYPES for n in names):
                raise _Undecided
            for t in chain.from_iterable(_TYPES[n] for n in names):
                if t in by_type:
                    raise _Undecided
                by_type[t] = branch
        groups: dict[int, tuple[Any, list[Any]]] = {}
        for v in values:
            branch = by_type.get(type(v))
            if branch is None:
                return False  # no branch takes a value of this type
            groups.setdefault(id(branch), (branch, []))[1].append(v)
        return all(self._check(branch, vs) for branch, vs in groups.values())

    @staticmethod
    def _in_enum(choices: list[Any], values: list[Any], types: set[type]) -> bool:
        # Set membership is exact only within one of these types (True == 1 in Python).
        for t in (str, int):
            if types == {t}:
                if any(type(c) not in (str, int, float, bool, type(None)) for c in choices):
                    raise _Undecided
                return set(values) <= {c for c in choices if type(c) is t}
        raise _Undecided

    @staticmethod
    def _strings(s: dict[str, Any], values: list[str]) -> bool:
        if not values or not s.keys() & {"pattern", "minLength", "maxLength"}:
            return True
        distinct: set[str] = set(values)
        least = s.get("minLength", 0)
        if least == 1 and "" in distinct:  # the usual bound, in O(1)
            return False
        if least > 1 and min(map(len, distinct)) < least:
            return False
        if "maxLength" in s and max(map(len, distinct)) > s["maxLength"]:
            return False
        if "pattern" in s:
            search: Callable[[str], Any] = _end_anchored(s["pattern"]).search
            if not all(map(search, distinct)):
                return False
        return True

    @staticmethod
    def _numbers(s: dict[str, Any], values: list[int | float]) -> bool:
        if not values:
            return True
        # A NaN makes min/max answer NaN (fails the comparison: "not shown") or ignores it
        # (jsonschema lets a NaN pass a bound too): never a wrong "yes".
        if "minimum" in s and not min(values) >= s["minimum"]:
            return False
        return "maximum" not in s or max(values) <= s["maximum"]

    def _objects(self, s: dict[str, Any], values: list[dict[str, Any]]) -> bool:
        if not values or not s.keys() & {"properties", "required", "additionalProperties",
                                         "patternProperties"}:
            return True
        columns = _columns(values)
        if columns is None:
            raise _Undecided  # validate reports such keys before the schema (MG109)
        n = len(values)
        if any(len(columns.get(name, ())) != n for name in s.get("required", ())):
            return False
        props: dict[str, Any] = s.get("properties", {})
        patterns: dict[str, Any] = s.get("patternProperties", {})
        extra = s.get("additionalProperties", True)
        for key, column in columns.items():
            matched = [sub for pat, sub in patterns.items() if re.search(pat, key)]
            for sub in matched:
                if not self._check(sub, column):
                    return False
            if key in props:
                if not self._check(props[key], column):
                    return False
            elif not matched:
                if extra is False:
                    return False
                if extra is not True and not self._check(extra, column):
                    return False
        return True

    def _arrays(self, s: dict[str, Any], values: list[list[Any]]) -> bool:
        if not values:
            return True
        if "minItems" in s and min(map(len, values)) < s["minItems"]:
            return False
        if "maxItems" in s and max(map(len, values)) > s["maxItems"]:
            return False
        if s.get("uniqueItems"):
            try:  # unique in Python (True == 1 == 1.0) is unique in JSON Schema too
                if list(map(len, map(set, values))) != list(map(len, values)):
                    return False
            except TypeError:  # unhashable items (mappings, lists): not decided here
                raise _Undecided from None
        if "items" in s:
            if not isinstance(s["items"], dict):
                raise _Undecided
            if not self._check(s["items"], list(chain.from_iterable(values))):
                return False
        return True


def _columns(records: list[dict[str, Any]]) -> dict[str, list[Any]] | None:
    """key -> the values of that key, over all ``records`` (None: a key is not text).

    Records are grouped by their keys in order (a generated or hand-kept file has a few
    dozen such shapes for 50,000 records); each group is cut into columns in C
    (``zip(*map(itemgetter(*keys), group))``)."""
    shapes: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for record in records:
        keys = tuple(record)
        group = shapes.get(keys)
        if group is None:
            shapes[keys] = [record]
        else:
            group.append(record)
    out: dict[str, list[Any]] = {}
    for keys, group in shapes.items():
        if any(type(k) is not str for k in keys):
            return None
        if not keys:
            continue
        cut = [list(map(itemgetter(keys[0]), group))] if len(keys) == 1 else \
            zip(*map(itemgetter(*keys), group), strict=True)
        for key, column in zip(keys, cut, strict=True):
            have = out.get(key)
            if have is None:
                out[key] = column if isinstance(column, list) else list(column)
            else:
                have.extend(column)
    return out
