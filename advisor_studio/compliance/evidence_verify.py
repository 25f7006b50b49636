#!/usr/bin/env python3
"""Check an Advisor Studio evidence pack: python3 verify.py [FOLDER]. Standard library only.

1. Every file listed in manifest.json has the SHA-256 and size listed there; no file is unlisted.
2. Every approval manifest hashes to its recorded SHA-256: SHA-256 of the JSON with sorted keys, no
   spaces, UTF-8 (not ASCII-escaped) -- the system's own definition.
3. Every audit entry hashes to its entry_hash (the same JSON of seq, at, actor_id, actor_label,
   action, object_type, object_id, details and prev_hash), and of two entries with consecutive
   sequence numbers the later one's prev_hash is the earlier one's entry_hash. The pack holds a
   subset of the chain: links across a gap are checked against the full audit trail, not here.

Exit status 0 when everything holds; 1 with one line per problem otherwise; 2 if the pack is unreadable.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

GENESIS_HASH = "0" * 64
CHUNK = 1024 * 1024
AUDIT_FIELDS = ("seq", "at", "actor_id", "actor_label", "action", "object_type", "object_id", "details",
                "prev_hash")


def canonical(data) -> bytes:
    """The exact bytes the system hashes: sorted keys, no spaces, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_of(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def inside(folder: Path, relative: str) -> Path | None:
    """The listed path, refusing any that would point outside the pack."""
    path = (folder / relative).resolve()
    return path if folder in path.parents else None


def check_files(folder: Path, manifest: dict) -> list[str]:
    problems, listed = [], set()
    for item in manifest.get("files", []):
        relative = str(item.get("path", ""))
        listed.add(relative)
        path = inside(folder, relative)
        if path is None or not path.is_file():
            problems.append(f"{relative}: listed in manifest.json but missing")
            continue
        actual, size = sha256_of(path)
        if actual != item.get("sha256"):
            problems.append(f"{relative}: SHA-256 is {actual}, manifest.json lists {item.get('sha256')}")
        elif size != item.get("size"):
            problems.append(f"{relative}: {size} bytes, manifest.json lists {item.get('size')}")
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and relative != "manifest.json" and relative not in listed \
                and "__pycache__" not in path.parts:
            problems.append(f"{relative}: not listed in manifest.json")
    return problems


def check_approvals(folder: Path, manifest: dict) -> list[str]:
    problems = []
    for relative in manifest.get("approval_manifests", []):
        path = inside(folder, relative)
        try:
            document = json.loads(path.read_text("utf-8")) if path else None
            recorded, body = document["manifest_sha256"], document["manifest"]
        except (OSError, ValueError, TypeError, KeyError) as exc:
            problems.append(f"{relative}: cannot read the approval manifest ({exc})")
            continue
        actual = hashlib.sha256(canonical(body)).hexdigest()
        if actual != recorded:
            problems.append(f"{relative}: the approval manifest hashes to {actual}, but its recorded "
                            f"manifest_sha256 is {recorded}")
    return problems


def check_audit(folder: Path, manifest: dict) -> list[str]:
    relative = manifest.get("audit_entries")
    if not relative:
        return ["manifest.json names no audit entries file"]
    path = inside(folder, relative)
    problems, previous = [], None
    try:
        lines = path.read_text("utf-8").splitlines() if path else None
    except (OSError, ValueError) as exc:
        return [f"{relative}: cannot read ({exc})"]
    if lines is None:
        return [f"{relative}: missing"]
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
            fields = {name: entry[name] for name in AUDIT_FIELDS}
            fields["seq"], fields["object_id"] = int(fields["seq"]), str(fields["object_id"])
            entry_hash = entry["entry_hash"]
        except (ValueError, TypeError, KeyError) as exc:
            problems.append(f"{relative} line {number}: not an audit entry ({exc})")
            previous = None
            continue
        seq = fields["seq"]
        actual = hashlib.sha256(canonical(fields)).hexdigest()
        if actual != entry_hash:
            problems.append(f"audit entry seq {seq}: its fields hash to {actual}, but its entry_hash is {entry_hash}")
        if seq == 1 and fields["prev_hash"] != GENESIS_HASH:
            problems.append(f"audit entry seq 1: prev_hash is {fields['prev_hash']}, not the genesis hash")
        if previous is not None:
            if seq <= previous[0]:
                problems.append(f"audit entry seq {seq}: out of order or repeated after seq {previous[0]}")
            elif seq == previous[0] + 1 and fields["prev_hash"] != previous[1]:
                problems.append(f"audit entries seq {previous[0]} -> {seq}: chain link broken (prev_hash "
                                f"{fields['prev_hash']} is not the entry_hash {previous[1]} of seq {previous[0]})")
        previous = (seq, entry_hash)
    return problems


def check(folder: Path) -> list[str]:
    """Every problem found in the pack at ``folder`` (empty when it verifies)."""
    folder = folder.resolve()
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    return check_files(folder, manifest) + check_approvals(folder, manifest) + check_audit(folder, manifest)


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    try:
        problems = check(folder)
    except (OSError, ValueError) as exc:
        print(f"FAILED: cannot read manifest.json in {folder}: {exc}")
        return 2
    if problems:
        for problem in problems:
            print(f"FAILED: {problem}")
        print(f"{len(problems)} problem(s) found.")
        return 1
    print("OK: every file, approval manifest and audit entry in this pack verifies.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
