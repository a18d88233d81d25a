"""Stored rows to objects: the hot loop of ``read_all``, shared by both read paths (SQLAlchemy, and
the stdlib one of a ready SQLite file). No SQLAlchemy here, so the fast path never imports it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from reconciler.infra.heap import collector_paused as collector_paused  # both read paths pause it
from reconciler.objects import SECRET_KEY, Address, Kind, Resource, Secret, StoredObject

#: The ``objects`` columns read_all selects, in the order objects_from_rows unpacks them.
OBJECT_COLUMNS = ("address", "kind", "body", "depends_on", "version", "updated_at", "updated_by")

_KINDS = {kind.value: kind for kind in Kind}
_SECRET_MARK = f'"{SECRET_KEY}"'  # how encode_body's marker key looks in JSON text


def objects_from_rows(rows: Iterable[Sequence[Any]]) -> dict[Address, StoredObject]:
    """The hot loop of read_all: per row, a few lookups, one orjson parse and three small records.

    Rows are ``OBJECT_COLUMNS`` in order, ``updated_at`` already a datetime. read_all runs it with
    the cyclic garbage collector paused (:func:`collector_paused`). 10,000 objects make over a hundred
    thousand dicts, lists and records, none of them in a cycle; with the collector on they trigger
    collections that walk them again and again (BENCHMARKS.md, "Plan at scale", has the numbers).
    The collector walks them once after it resumes; that single pass is the caller's normal cost.
    """
    kinds, loads, mark = _KINDS, orjson.loads, _SECRET_MARK
    dependencies: dict[str, tuple[Address, ...]] = {"[]": ()}  # few distinct lists, shared by many rows
    result: dict[Address, StoredObject] = {}
    for text, kind, body, depends_on, version, updated_at, updated_by in rows:
        address = Address(kinds[kind], text[len(kind) + 1 :])
        data = loads(body)
        if mark in body:  # only bodies with Secret leaves need a second walk
            data = revive_secrets(data)
        deps = dependencies.get(depends_on)
        if deps is None:
            deps = dependencies[depends_on] = tuple(map(Address.parse, loads(depends_on)))
        result[address] = StoredObject(Resource(address, data, deps), version, updated_at, updated_by)
    return result


def revive_secrets(value: Any) -> Any:
    """:func:`~reconciler.objects.decode_body` done in place, for a value fresh from ``orjson.loads``.

    Nothing else holds that value, so replacing the ``{"$secret": ...}`` leaves where they stand
    avoids copying every container. The contract's round-trip tests (one a property test) pin it
    to encode_body.
    """
    if type(value) is dict:
        if len(value) == 1 and SECRET_KEY in value:
            inner = value[SECRET_KEY]
            return Secret(template=inner["template"], fingerprint=inner["fingerprint"])
        for key, item in value.items():
            if type(item) is dict or type(item) is list:
                value[key] = revive_secrets(item)
    elif type(value) is list:
        for index, item in enumerate(value):
            if type(item) is dict or type(item) is list:
                value[index] = revive_secrets(item)
    return value
