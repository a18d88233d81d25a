"""The vocabulary every layer shares: what an object is, how it is named, what a secret looks like.

Desired objects (from ``desired``) and stored objects (from ``state``) are both :class:`Resource`: an
address plus a canonical body (plain JSON values, with :class:`Secret` leaves where a value is
sensitive). The diff engine pairs them by address and compares bodies, so both sides must be in the
same canonical form: ``desired`` produces it and ``state`` stores it verbatim.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

ENV_PLACEHOLDER = re.compile(r"\{\{\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class Kind(StrEnum):
    """The kinds of object a project manages (declaration order is the file's section order)."""

    BLOCK = "block"
    VARIABLE = "variable"
    CONCURRENCY_LIMIT = "concurrency_limit"
    WORK_POOL = "work_pool"
    WORK_QUEUE = "work_queue"
    DEPLOYMENT = "deployment"
    AUTOMATION = "automation"

    @property
    def rank(self) -> int:
        """Position in apply order: a kind comes after every kind its objects may reference (a queue
        after its pool, a deployment after its pool, queue, blocks and limits, an automation after
        the deployments, pools and blocks it names). Deletes run in the reverse order."""
        return _RANK[self]

    @property
    def label(self) -> str:
        """How a sentence names the kind: "work pool", "concurrency limit"."""
        return self.value.replace("_", " ")


_RANK = {
    Kind.BLOCK: 0,
    Kind.VARIABLE: 0,
    Kind.CONCURRENCY_LIMIT: 0,
    Kind.WORK_POOL: 1,
    Kind.WORK_QUEUE: 2,
    Kind.DEPLOYMENT: 3,
    Kind.AUTOMATION: 4,
}


class Address(NamedTuple):
    """Identity of an object: ``block.aws-credentials/prod``, ``work_pool.ecs``, ``deployment.etl/daily``."""

    kind: Kind
    name: str

    def __str__(self) -> str:
        return f"{self.kind.value}.{self.name}"

    @classmethod
    def parse(cls, text: str) -> Address:
        kind, sep, name = text.partition(".")
        if not sep or not name:
            raise ValueError(f"not an address: {text!r}")
        return cls(Kind(kind), name)

    @classmethod
    def block(cls, block_type: str, name: str) -> Address:
        return cls(Kind.BLOCK, f"{block_type}/{name}")

    @classmethod
    def pool(cls, name: str) -> Address:
        return cls(Kind.WORK_POOL, name)

    @classmethod
    def deployment(cls, flow: str, name: str) -> Address:
        return cls(Kind.DEPLOYMENT, f"{flow}/{name}")

    @classmethod
    def work_queue(cls, pool: str, name: str) -> Address:
        return cls(Kind.WORK_QUEUE, f"{pool}/{name}")

    @classmethod
    def variable(cls, name: str) -> Address:
        return cls(Kind.VARIABLE, name)

    @classmethod
    def concurrency_limit(cls, name: str) -> Address:
        return cls(Kind.CONCURRENCY_LIMIT, name)

    @classmethod
    def automation(cls, name: str) -> Address:
        return cls(Kind.AUTOMATION, name)


@dataclass(frozen=True)
class Secret:
    """A sensitive value, known only by the template it comes from and an HMAC of its resolved value.

    ``template`` is the text as written in the file (``"{{ $AWS_SECRET_ACCESS_KEY }}"`` or
    ``"Bearer {{ $TOKEN }}"``): it names environment variables, never values. The launcher resolves it
    from its own environment at run time; the diff compares fingerprints to detect rotation.
    """

    template: str
    fingerprint: str

    @property
    def env_names(self) -> tuple[str, ...]:
        return tuple(ENV_PLACEHOLDER.findall(self.template))

    def __repr__(self) -> str:
        return f"Secret({self.template!r}, <redacted>)"

    def resolve(self, environ: Mapping[str, str]) -> str:
        """The real value, from ``environ``. Used by launchers and stores that must send it."""
        missing = [n for n in self.env_names if n not in environ]
        if missing:
            raise KeyError(missing[0])
        return ENV_PLACEHOLDER.sub(lambda m: environ[m.group(1)], self.template)


def fingerprint(key: bytes, value: str) -> str:
    """A secret value's fingerprint: HMAC-SHA256 under the store's key (comparable, not reversible)."""
    return "hmac-sha256:" + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Resource:
    """One object in canonical form. ``body`` is JSON-shaped; ``Secret`` may appear as a leaf."""

    address: Address
    body: Mapping[str, Any]
    depends_on: tuple[Address, ...] = ()

    @property
    def kind(self) -> Kind:
        return self.address.kind


@dataclass(frozen=True)
class StoredObject:
    """A resource as the store holds it: with the version that optimistic writes check."""

    resource: Resource
    version: int
    updated_at: datetime | None = None
    updated_by: str = ""
    drifted_at: str | None = None  # set when the live object differs from what this tool last wrote

    @property
    def address(self) -> Address:
        return self.resource.address


@dataclass(frozen=True)
class LiveState:
    """Everything a store holds for one project, read in one call."""

    url: str
    serial: int
    objects: Mapping[Address, StoredObject] = field(default_factory=dict)
    last_commit: str | None = None

    def get(self, address: Address) -> StoredObject | None:
        return self.objects.get(address)


def parse_iso(value: Any) -> datetime | None:
    """A datetime from ISO text written by us or a server; None for empty or unreadable values."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def iter_secrets(value: Any) -> Iterator[Secret]:
    """Every Secret leaf inside a JSON-shaped value."""
    if isinstance(value, Secret):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from iter_secrets(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from iter_secrets(v)


def resolve_secrets(value: Any, environ: Mapping[str, str]) -> Any:
    """A copy of ``value`` with every Secret replaced by its real value (launch time only)."""
    if isinstance(value, Secret):
        return value.resolve(environ)
    if isinstance(value, Mapping):
        return {k: resolve_secrets(v, environ) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve_secrets(v, environ) for v in value]
    return value


SECRET_KEY = "$secret"


def encode_body(value: Any) -> Any:
    """JSON-safe form of a body: each Secret becomes ``{"$secret": {template, fingerprint}}``.

    The store and the saved plan both use this, so a round trip keeps fingerprints and templates and
    never needs (or sees) a secret value.
    """
    if isinstance(value, Secret):
        return {SECRET_KEY: {"template": value.template, "fingerprint": value.fingerprint}}
    if isinstance(value, Mapping):
        return {k: encode_body(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_body(v) for v in value]
    return value


def decode_body(value: Any) -> Any:
    """Inverse of :func:`encode_body`."""
    if isinstance(value, dict):
        inner = value.get(SECRET_KEY) if len(value) == 1 else None
        if isinstance(inner, dict) and set(inner) == {"template", "fingerprint"}:
            return Secret(template=inner["template"], fingerprint=inner["fingerprint"])
        return {k: decode_body(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_body(v) for v in value]
    return value


# -- objects that exist but are not this project's -------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """An object that exists in the store (or on its server) at an address this project does not manage.

    ``owner`` is the project that manages it, or None when no project does (made by ``prefect deploy``,
    the UI, a script): the plan adopts those only with consent and refuses the others, naming the
    owner. ``body`` is what exists, in canonical form (for the adopt's field-level diff).
    """

    address: Address
    owner: str | None
    body: Mapping[str, Any] | None = None


def is_unset(value: Any) -> bool:
    """Whether a canonical value says nothing: None, an empty mapping or an empty list. A file that
    leaves a field out produces these, so on an adopted object they mean "keep what is there"."""
    return value is None or (isinstance(value, Mapping | list | tuple) and not value)


def keep_unset(existing: Any, wanted: Any) -> Any:
    """``wanted`` with every unset leaf (and every key it lacks) filled from ``existing``: what adopting
    an existing object writes, so fields the file does not declare (pull steps, version, job variables
    of a template, parameters) are never clobbered. Mappings merge key by key; other values are leaves
    (lists included, as in the diff: their order is meaningful)."""
    if is_unset(wanted):
        return existing if existing is not None else wanted
    if isinstance(wanted, Mapping) and isinstance(existing, Mapping):
        merged = {key: keep_unset(existing.get(key), value) for key, value in wanted.items()}
        for key, value in existing.items():
            if key not in merged:
                merged[key] = value
        return merged
    return wanted
