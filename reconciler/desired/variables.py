"""``{{ prefect.variables.NAME }}``: where the file reads a Variable, and Prefect's rule for its value.

A deployment's ``parameters`` and job variables (and a pool's job variables) may read a Variable.
The plan keeps the placeholder as written (the value is the variable's, not the deployment's: a
changed variable never shows as a change of the deployment); the run resolves it when it is
launched, from the variables in the stored state. The loader only makes sure the variable exists:
declared under ``variables:``, or in the store (a :class:`Reference`, checked when planning), and the
object reading it depends on it so a plan creates the variable first.

:func:`resolve` is Prefect's rule (``prefect.utilities.templating.resolve_variables``): a string that
is exactly one variable placeholder becomes the variable's JSON value with its type; a placeholder
inside other text is replaced by ``str(value)``. Prefect turns an unknown variable into ``""``; here
the caller is told which names are unknown (the launch refuses the run instead of passing an empty
value on).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.desired.context import LoadContext
from reconciler.desired.desired import Reference
from reconciler.desired.yamlfile import Path
from reconciler.objects import Address

PREFIX = "prefect.variables."
# Prefect's PLACEHOLDER_CAPTURE_REGEX, narrowed to variable placeholders: (full match, variable name)
VARIABLE_PLACEHOLDER = re.compile(r"({{\s*" + re.escape(PREFIX) + r"([\w\.\-\[\]$]+)\s*}})")


def names(value: Any) -> list[str]:
    """The variable names a value reads, in order of first appearance (each once)."""
    found: dict[str, None] = {}
    _collect(value, found)
    return list(found)


def _collect(value: Any, found: dict[str, None]) -> None:
    if isinstance(value, str):
        if "{{" in value:
            found.update((m.group(2), None) for m in VARIABLE_PLACEHOLDER.finditer(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, found)


def resolve(value: Any, lookup: Callable[[str], Any]) -> Any:
    """``value`` with every variable placeholder replaced by Prefect's rule; ``lookup(name)`` gives
    the variable's value (the caller has made sure every name of :func:`names` is known). Other
    values, and strings without a variable placeholder, come back as they are (the same object)."""
    if isinstance(value, str):
        if "{{" not in value:
            return value
        found = VARIABLE_PLACEHOLDER.findall(value)
        if not found:
            return value
        if len(found) == 1 and found[0][0] == value:  # the whole string: the value keeps its type
            return lookup(found[0][1])
        for full_match, name in dict.fromkeys(found):
            value = value.replace(full_match, str(lookup(name)))
        return value
    if isinstance(value, Mapping):
        return {key: resolve(item, lookup) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, lookup) for item in value]
    return value


def references(ctx: LoadContext, value: Any, path: Path) -> list[Address]:
    """The variables ``value`` (at ``path`` of the file) reads, as addresses for ``depends_on``; one
    not declared in the file is a :class:`Reference` at the string that reads it, checked against
    the store when planning. Variables are loaded after pools, so a pool's reference to a declared
    variable is also recorded, and resolved then by the declaration."""
    addresses: list[Address] = []
    if not ctx.templated:
        return addresses
    for where, text in _strings(value, path):
        for name in names(text):
            address = Address.variable(name)
            addresses.append(address)
            if address not in ctx.resources:
                ctx.references.append(Reference(address, where))
    return addresses


def _strings(value: Any, path: Path) -> list[tuple[Path, str]]:
    if isinstance(value, str):
        return [(path, value)] if "{{" in value else []
    if isinstance(value, Mapping):
        return [found for key, item in value.items() for found in _strings(item, (*path, key))]
    if isinstance(value, list | tuple):
        return [found for i, item in enumerate(value) for found in _strings(item, (*path, i))]
    return []
