"""The archive format, once: file names, the manifest and its checks, checksums.

Standard library only, no other mailgov import: the same file is the mail host's module_utils
(``module_utils/mailgov_archive_format.py`` is a link to it), so the Ansible module that
writes archives on the mail host (``library/mailgov_mail_store.py``) and the controller that
reads the fetched manifest (``mailgov/archive.py``, the planner's ``archived``) share one
definition. The manifest::

    {"version": 1,
     "archives": {"<address>": {"archive": "<file name>", "sha256": "<hex>", "size": <bytes>,
                                "store": "<home dir archived>", "files": <n>,
                                "created": "<YYYY-MM-DDTHH:MM:SSZ>",
                                "newest": <mtime of the newest message archived>}}}
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from datetime import date
from typing import Any, BinaryIO

MANIFEST_VERSION = 1
MANIFEST_FILE = "manifest.json"
ARCHIVE_SUFFIX = ".tar.gz"  # gzip: in every Debian base system; restorable with plain tar
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ADDRESS = re.compile(r"[a-z0-9_][a-z0-9._-]*@[a-z0-9.-]+")


class ManifestError(ValueError):
    """The manifest is not what mailgov writes (one-line reason)."""


def archive_name(address: str, day: date) -> str:
    """``<address>-<YYYYMMDD>.tar.gz``: one file per mailbox and day, sorted by address."""
    if not _ADDRESS.fullmatch(address.lower()):
        raise ValueError(f"not a mail address: {address!r}")
    return f"{address.lower()}-{day.strftime('%Y%m%d')}{ARCHIVE_SUFFIX}"


def empty_manifest() -> dict[str, Any]:
    return {"version": MANIFEST_VERSION, "archives": {}}


def entry_problems(entry: Any) -> list[str]:
    if not isinstance(entry, dict):
        return ["not a mapping"]
    out = []
    name = entry.get("archive")
    if not isinstance(name, str) or not name.endswith(ARCHIVE_SUFFIX) or "/" in name:
        out.append(f"archive must be a file name ending in {ARCHIVE_SUFFIX}")
    if not isinstance(entry.get("sha256"), str) or not _SHA256.fullmatch(entry["sha256"]):
        out.append("sha256 must be 64 lower-case hex digits")
    if not isinstance(entry.get("size"), int) or entry["size"] < 0:
        out.append("size must be a non-negative integer")
    if not isinstance(entry.get("store"), str) or not entry["store"].startswith("/"):
        out.append("store must be an absolute path")
    return out


def parse_manifest(text: str) -> dict[str, Any]:
    """Read and check a manifest; raises :class:`ManifestError` on anything unexpected."""
    if not text.strip():
        return empty_manifest()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ManifestError(f"manifest is not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
        raise ManifestError(f"manifest version must be {MANIFEST_VERSION}")
    archives = data.get("archives")
    if not isinstance(archives, dict):
        raise ManifestError("manifest has no 'archives' mapping")
    for address, entry in archives.items():
        problems = entry_problems(entry)
        if problems:
            raise ManifestError(f"manifest entry {address}: {'; '.join(problems)}")
    return data


def read_manifest(archive_dir: str) -> dict[str, Any]:
    """The manifest in ``archive_dir``; an absent file is an empty manifest."""
    path = os.path.join(archive_dir, MANIFEST_FILE)
    if not os.path.exists(path):
        return empty_manifest()
    with open(path, encoding="utf-8") as fh:
        return parse_manifest(fh.read())


def write_manifest(archive_dir: str, manifest: dict[str, Any]) -> None:
    """Atomically, root-only (0600), synced before it replaces the old one."""
    os.makedirs(archive_dir, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=archive_dir, prefix=".manifest-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, os.path.join(archive_dir, MANIFEST_FILE))


def sha256_stream(fh: BinaryIO, chunk: int = 1 << 20) -> tuple[str, int]:
    """(hex sha256, size in bytes) of what ``fh`` holds from here on."""
    h = hashlib.sha256()
    size = 0
    for block in iter(lambda: fh.read(chunk), b""):
        h.update(block)
        size += len(block)
    return h.hexdigest(), size


def sha256_file(path: str) -> tuple[str, int]:
    with open(path, "rb") as fh:
        return sha256_stream(fh)


def verify(entry: dict[str, Any], sha256: str, size: int) -> list[str]:
    """Why an archive file does not match its manifest record (empty: it does)."""
    out = []
    if sha256 != entry.get("sha256"):
        out.append(f"sha256 {sha256[:12]}… differs from the manifest's "
                   f"{str(entry.get('sha256'))[:12]}…")
    if size != entry.get("size"):
        out.append(f"size {size} differs from the manifest's {entry.get('size')}")
    return out


def verify_file(archive_dir: str, entry: dict[str, Any]) -> list[str]:
    """Why the archive file in ``archive_dir`` does not match ``entry`` (empty: it does)."""
    path = os.path.join(archive_dir, entry["archive"])
    if not os.path.isfile(path):
        return [f"archive {entry['archive']} is missing"]
    problems = verify(entry, *sha256_file(path))
    if problems:
        return [f"archive {entry['archive']} does not match its manifest record: "
                + "; ".join(problems)]
    return []
