"""The project's name read without trusting the file to parse: state commands must find the state of a
project whose ``prefect.yaml`` is broken mid-edit, or they would show an empty project named after
the directory, which looks exactly like lost state.

The name is the file's top-level ``name:`` line, read by a line rule when the YAML does not parse:
the first unindented ``name:`` key with a plain or quoted scalar (a trailing ``# comment`` dropped).
"""

from __future__ import annotations

import re

_NAME_LINE = re.compile(r"^name[ \t]*:[ \t]*(?P<value>[^\n]*?)[ \t]*$", re.MULTILINE)
_COMMENT = re.compile(r"[ \t]+#.*$")


def lenient_name(text: str) -> str | None:
    """The value of the first top-level ``name:`` line, or None when there is none (or it is empty,
    a block scalar, a flow collection or a template)."""
    for match in _NAME_LINE.finditer(text):
        value = match.group("value")
        if value[:1] in ("'", '"'):
            quote = value[0]
            end = value.find(quote, 1)
            value = value[1:end] if end > 0 else ""
        else:
            value = _COMMENT.sub("", value)
        value = value.strip()
        if not value or value[0] in "#|>[{&*!%@`" or "{{" in value:
            return None
        return value
    return None
