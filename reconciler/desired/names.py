"""The rules every name in the file follows: Prefect's own, plus no character that can fake output.

Prefect refuses ``/ % & > <`` in flow, deployment, work pool and work queue names
(``prefect.types.names.BANNED_CHARACTERS``), block document names that are not lowercase letters,
digits and dashes, and pool names starting with ``prefect``. We add one rule for every name that
reaches a plan, a log or a pull-request comment: no control character (C0, DEL, C1), no line or
paragraph separator and no bidirectional override, because a newline in a deployment name can fake a
``Plan: 0 to create`` line and a right-to-left override can make one name look like another.

Messages never print a refused character raw: :func:`show` escapes it as ``\\uXXXX``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from enum import StrEnum

# prefect.types.names.BANNED_CHARACTERS (Prefect 3.9.1)
BANNED_CHARACTERS = "/%&><"
_BANNED = frozenset(BANNED_CHARACTERS)

# Bidirectional formatting characters (Unicode "Trojan Source", CVE-2021-42574).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})
_BLOCK_NAME = re.compile(r"[a-z0-9-]+")
_VARIABLE_NAME = re.compile(r"[a-z0-9_-]+")  # prefect.types.names.VariableName


class NameKind(StrEnum):
    """Which object a name belongs to (the rules differ slightly)."""

    FLOW = "flow name"
    DEPLOYMENT = "deployment name"
    WORK_POOL = "work pool name"
    WORK_QUEUE = "work queue name"
    BLOCK = "block name"
    SLUG = "schedule slug"
    PROJECT = "project name"
    VARIABLE = "variable name"
    CONCURRENCY_LIMIT = "concurrency limit name"
    AUTOMATION = "automation name"


def is_unsafe_char(char: str) -> bool:
    """A character no name may hold: controls, line/paragraph separators, surrogates, bidi overrides."""
    return char in _BIDI or unicodedata.category(char) in _INVISIBLE_CATEGORIES


def show(value: str) -> str:
    """``value`` quoted for a message, every unsafe character escaped (never printed raw)."""
    escaped = "".join(f"\\u{ord(c):04x}" if is_unsafe_char(c) else c for c in value)
    return "'" + escaped.replace("'", "\\'") + "'"


def problem(value: str, kind: NameKind, *, declared: bool = True) -> str | None:
    """Why ``value`` is not a valid name of ``kind``, or None when it is.

    ``declared=False`` checks a reference to an object made elsewhere: the rules for creating one
    (a pool name's reserved ``prefect`` prefix) do not apply. Empty names are the caller's business
    (an unnamed deployment entry is skipped, not refused).
    """
    if type(value) is str:
        return _problem_of_text(value, kind, declared)
    return _problem(value, kind, declared)


# A large file names the same pool, queue and flow in every deployment: each is checked once.
@functools.lru_cache(maxsize=4096)
def _problem_of_text(value: str, kind: NameKind, declared: bool) -> str | None:
    return _problem(value, kind, declared)


def _problem(value: str, kind: NameKind, declared: bool) -> str | None:
    unsafe = [] if _plain_ascii(value) else sorted({c for c in value if is_unsafe_char(c)})
    if unsafe:
        what = ", ".join(_describe(c) for c in unsafe)
        return f"{kind.value} {show(value)} may not contain {what}"
    if kind in (NameKind.PROJECT, NameKind.AUTOMATION):
        return None  # Prefect takes any text; only the characters that fake output are refused
    if kind is NameKind.VARIABLE:
        if not _VARIABLE_NAME.fullmatch(value):
            return f"{kind.value} {show(value)} may only contain lowercase letters, digits, dashes and underscores"
        return None
    if kind is NameKind.BLOCK:
        if not _BLOCK_NAME.fullmatch(value):
            return f"{kind.value} {show(value)} may only contain lowercase letters, digits and dashes"
        return None
    banned = [] if _BANNED.isdisjoint(value) else sorted(set(value) & _BANNED)
    if banned:
        return f"{kind.value} {show(value)} may not contain {' '.join(banned)}"
    if kind is NameKind.WORK_POOL and declared:
        if not value.strip("' \""):
            return "work pool name may not be empty"
        if value.lower().startswith("prefect"):
            return "work pool names may not start with 'prefect' (Prefect reserves them)"
    return None


def _plain_ascii(value: str) -> bool:
    """No unsafe character, decided in C for the usual name: printable ASCII holds no control
    character (the only unsafe characters below U+0080), and the others all lie above it. A plan of
    thousands of deployments checks tens of thousands of names."""
    return isinstance(value, str) and value.isascii() and value.isprintable()


def _describe(char: str) -> str:
    if char == "\n":
        return "a newline"
    name = unicodedata.name(char, "")
    label = f" ({name.lower()})" if name else ""
    return f"the control character U+{ord(char):04X}{label}"
