"""``serve --log-format json``: each log line as one JSON object (``ts``, ``level``, ``msg``, ``fields``).

The loop writes lines ``<ISO time> <text>``; this turns one into an object a log pipeline can index
without parsing prose. ``level`` is ``error`` for ``error: ...`` lines, else ``info``; ``fields``
holds what the text names in the loop's fixed phrasing (``run <id> of <flow/name>``, ``on <pool>``,
the final state). URLs are redacted (``infra.redact``) in the text and every field, so no credential
reaches a line even if an error message carried one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from reconciler.infra.redact import redact_urls

_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (.*)$", re.S)
_RUN = re.compile(r"\brun (?P<run>[\w.-]+) of (?P<deployment>[^\s:()]+/[^\s:()]+)")
_POOL = re.compile(r"\bon (?P<pool>[\w.-]+)(?: as |$)")
_STATE = re.compile(r": (?P<state>COMPLETED|FAILED|CRASHED|CANCELLED|PENDING|RUNNING|SCHEDULED)\b")
_EVENT = re.compile(
    r"^(?P<event>launched|finished|crashed|cancelled|waiting|recovered|skipped|left running)\b"
)


def json_line(line: str) -> str:
    """One log line of the loop as a JSON object (one line, keys in a fixed order)."""
    found = _TS.match(line)
    ts, text = (found.group(1), found.group(2)) if found else (None, line)
    text = redact_urls(text)
    fields: dict[str, Any] = {}
    for pattern in (_EVENT, _RUN, _POOL, _STATE):
        match = pattern.search(text)
        if match:
            fields.update({k: v for k, v in match.groupdict().items() if v})
    level = "error" if text.startswith("error:") else "info"
    return orjson.dumps({"ts": ts, "level": level, "msg": text, "fields": fields}).decode()


def json_log(write: Callable[[str], None]) -> Callable[[str], None]:
    """A log function for the loop that writes JSON lines through ``write``."""
    return lambda line: write(json_line(line))
