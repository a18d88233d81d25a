"""What a Prefect server cannot tell us about the objects we manage, kept in Prefect Variables.

The server holds the objects themselves; the *inventory* holds, per managed address, what makes them
ours and comparable: the version optimistic writes check, a keyed hash of the object as we last wrote
it (a different hash on read means someone changed it outside: drift), the addresses it depends on,
its secret leaves (template, fingerprint, and a keyed hash of the value the server holds; never the
value) and an *overlay* for the few fields the server keeps differently from the file (a schedule's
anchor date it filled in, a field it drops): the file's value and a hash of the server's, so the
file's value is restored only while the server still holds what it held when we wrote.

A Variable holds at most 5,000 characters of JSON, so the inventory is sharded: entries go to
``hash(address) % shards`` and every shard carries its own write counter (their sum plus the head's
base is the store serial, so one write touches one shard). The head Variable holds the fingerprint
key, the last applied commit and the shard layout; when a shard would overflow, the layout doubles
into a new *generation* of shards written before the head points at it, so a crash mid-way leaves
the old generation in force.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from reconciler.objects import decode_body, encode_body

FORMAT = 1
MAX_VALUE_BYTES = 4900  # Prefect refuses a Variable value over 5,000 characters of JSON
INITIAL_SHARDS = 4
ABSENT: dict[str, bool] = {"$absent": True}  # an overlay's "the file has no value here"
VARIABLE_PREFIX = "reconciler__"  # every inventory Variable's name (head, shards, lease) starts so
Path = tuple[str | int, ...]


def slug(project: str) -> str:
    """A Variable-safe form of the project name (lowercase, digits, ``-``, ``_``), unique per name."""
    text = re.sub(r"[^a-z0-9_-]+", "-", project.lower()).strip("-") or "project"
    if text != project:
        text = f"{text[:80]}-{hashlib.sha256(project.encode()).hexdigest()[:8]}"
    return text[:120]


@dataclass(frozen=True)
class Names:
    """The names of one project's Variables (and its history artifact key) on the server."""

    project: str

    @property
    def base(self) -> str:
        return f"{VARIABLE_PREFIX}{slug(self.project)}"

    @property
    def head(self) -> str:
        return self.base

    @property
    def lock(self) -> str:
        return f"{self.base}__lock"

    def shard(self, generation: int, index: int) -> str:
        return f"{self.base}__inv_{generation}_{index}"

    @property
    def marker(self) -> str:
        """The tag on our deployments (and inventory Variables): the ownership mark the UI shows."""
        return f"managed-by:prefect-reconciler/{self.project}"

    @property
    def history_key(self) -> str:
        """The artifact key (lowercase letters, digits and dashes only), unique per project."""
        base = slug(self.project)
        key = re.sub(r"[^a-z0-9-]+", "-", base)
        if key != base:
            key = f"{key}-{hashlib.sha256(base.encode()).hexdigest()[:8]}"
        return f"reconciler-{key}-history"


# -- records -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretRecord:
    """A Secret leaf we wrote: the file's template and fingerprint, and a hash of what the server holds."""

    path: Path
    template: str
    fingerprint: str
    server: str


@dataclass(frozen=True)
class OverlayRecord:
    """A field the server keeps differently: the file's value (encoded) and a hash of the server's."""

    path: Path
    ours: Any
    server: str


@dataclass(frozen=True)
class Entry:
    """One managed object in the inventory."""

    version: int
    hash: str
    depends: tuple[str, ...] = ()
    secrets: tuple[SecretRecord, ...] = ()
    overlay: tuple[OverlayRecord, ...] = ()
    names: tuple[str, ...] | None = None  # pools: job variables the file sets; queues: fields it manages
    originals: Mapping[str, Any] | None = None  # pools with their own template: the defaults replaced
    triggers: bool = False  # deployments with triggers: read their automations too
    adopted: bool = False  # taken over from what existed: every write keeps the fields the file leaves unset
    id: str | None = None  # automations: the server's id (their names are not unique on the server)

    def encode(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"v": self.version, "h": self.hash}
        if self.depends:
            doc["d"] = list(self.depends)
        if self.secrets:
            doc["s"] = [[list(s.path), s.template, s.fingerprint, s.server] for s in self.secrets]
        if self.overlay:
            doc["o"] = [[list(o.path), o.ours, o.server] for o in self.overlay]
        if self.names is not None:
            doc["n"] = list(self.names)
        if self.originals is not None:
            doc["g"] = dict(self.originals)
        if self.triggers:
            doc["t"] = 1
        if self.adopted:
            doc["a"] = 1
        if self.id is not None:
            doc["i"] = self.id
        return doc

    @classmethod
    def decode(cls, doc: Mapping[str, Any]) -> Entry:
        return cls(
            version=int(doc["v"]),
            hash=str(doc.get("h", "")),
            depends=tuple(doc.get("d", ())),
            secrets=tuple(SecretRecord(tuple(p), t, f, s) for p, t, f, s in doc.get("s", ())),
            overlay=tuple(OverlayRecord(tuple(p), ours, s) for p, ours, s in doc.get("o", ())),
            names=tuple(doc["n"]) if "n" in doc else None,
            originals=doc.get("g"),
            triggers=bool(doc.get("t")),
            adopted=bool(doc.get("a")),
            id=doc.get("i"),
        )


@dataclass
class Shard:
    """One inventory Variable: its entries and how many writes went through it."""

    name: str
    id: str | None = None
    writes: int = 0
    entries: dict[str, Entry] = field(default_factory=dict)

    def value(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "w": self.writes,
            "e": {a: e.encode() for a, e in sorted(self.entries.items())},
        }

    def size(self) -> int:
        return len(orjson.dumps(self.value()))

    @classmethod
    def from_variable(cls, variable: Mapping[str, Any]) -> Shard:
        value = variable.get("value") or {}
        entries = {a: Entry.decode(e) for a, e in (value.get("e") or {}).items()}
        return cls(
            name=variable["name"], id=variable.get("id"), writes=int(value.get("w", 0)), entries=entries
        )


@dataclass(frozen=True)
class Head:
    """The head Variable: fingerprint key, lineage, last commit, and which generation of shards is in force."""

    key: str  # the fingerprint key, hex
    lineage: str | None = None  # made with the head; a head from before the field: its Variable's id
    generation: int = 1
    shards: int = INITIAL_SHARDS
    base: int = 0  # writes counted by earlier generations
    last_commit: str | None = None
    id: str | None = None

    def value(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "key": self.key,
            "lineage": self.lineage,
            "generation": self.generation,
            "shards": self.shards,
            "base": self.base,
            "last_commit": self.last_commit,
        }

    @classmethod
    def from_variable(cls, variable: Mapping[str, Any]) -> Head:
        value = variable.get("value") or {}
        return cls(
            key=str(value["key"]),
            lineage=value.get("lineage") or variable.get("id"),
            generation=int(value.get("generation", 1)),
            shards=int(value.get("shards", INITIAL_SHARDS)),
            base=int(value.get("base", 0)),
            last_commit=value.get("last_commit"),
            id=variable.get("id"),
        )

    def evolve(self, **changes: Any) -> Head:
        return replace(self, **changes)


def shard_index(address: str, shards: int) -> int:
    return int(hashlib.sha256(address.encode()).hexdigest()[:8], 16) % shards


# -- hashing and overlays ------------------------------------------------------------------------


def digest(key: bytes, value: Any) -> str:
    """A short keyed hash of a JSON-shaped value (Secret leaves by template and fingerprint)."""
    data = orjson.dumps(encode_body(value), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hmac.new(key, data, hashlib.sha256).hexdigest()[:20]


_MISSING = object()


def get_path(value: Any, path: Path) -> Any:
    """The value at ``path``, or ``_MISSING``."""
    for part in path:
        if not _has(value, part):
            return _MISSING
        value = value[part]
    return value


def _has(value: Any, part: str | int) -> bool:
    if isinstance(value, Mapping):
        return part in value
    return isinstance(value, list) and isinstance(part, int) and -len(value) <= part < len(value)


def set_path(value: Any, path: Path, new: Any) -> Any:
    """A copy of ``value`` with ``path`` set to ``new`` (``_MISSING`` removes it); parents are created."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, list) and isinstance(head, int) and -len(value) <= head < len(value):
        copy = list(value)
        copy[head] = set_path(copy[head], rest, new)
        return copy
    copy_map = dict(value) if isinstance(value, Mapping) else {}
    inner = set_path(copy_map.get(head, {}), rest, new)
    if inner is _MISSING:
        copy_map.pop(head, None)
    else:
        copy_map[head] = inner
    return copy_map


def differences(ours: Any, theirs: Any, path: Path = ()) -> Iterator[tuple[Path, Any, Any]]:
    """Leaf paths where two bodies differ (mappings recurse, anything else is a leaf, as in the diff)."""
    if isinstance(ours, Mapping) and isinstance(theirs, Mapping):
        for key in sorted(set(ours) | set(theirs), key=str):
            a, b = ours.get(key, _MISSING), theirs.get(key, _MISSING)
            if a is _MISSING or b is _MISSING or a != b:
                yield from differences(a, b, (*path, key))
        return
    if ours is _MISSING or theirs is _MISSING or ours != theirs:
        yield path, ours, theirs


def compute_overlay(key: bytes, ours: Any, mapped: Any) -> tuple[OverlayRecord, ...]:
    """What to remember so that ``mapped`` (the server's view) reads back as ``ours`` (the file's)."""
    return tuple(
        OverlayRecord(
            path, ABSENT if a is _MISSING else encode_body(a), digest(key, ABSENT if b is _MISSING else b)
        )
        for path, a, b in differences(ours, mapped)
    )


def apply_overlay(key: bytes, mapped: Any, overlay: tuple[OverlayRecord, ...]) -> Any:
    """Put the file's values back where the server still holds what it held when we wrote."""
    body = mapped
    for record in overlay:
        current = get_path(body, record.path)
        if digest(key, ABSENT if current is _MISSING else current) != record.server:
            continue  # changed on the server since: leave the server's value (drift shows it)
        ours = _MISSING if record.ours == ABSENT else decode_body(record.ours)
        body = set_path(body, record.path, ours)
    return body


def missing() -> Any:
    """The marker :func:`get_path` returns for an absent path (for callers outside this module)."""
    return _MISSING
