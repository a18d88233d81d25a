"""Append items to the sections of a hand-written ``prefect.yaml`` without touching a byte of it.

``reconcile import --write`` adds items to the sections (``blocks:``, ``work_pools:``, ...) of a file a
person wrote and keeps in Git, so every comment, blank line, quote style and indentation must stay as
it was. ruamel.yaml's round-trip parser tells where each section is and how it is indented; the new
items are dumped by ruamel in that same indentation and inserted as text after the last line of the
section (or as a new section at the end of the file). The original lines are never re-emitted, so
ruamel's known re-layouts (comments that drift to the next item, normalised spacing) cannot happen.
The result is parsed again the way the loader parses it and must equal the old document plus the new
items, or nothing is returned.

Strings are quoted whenever YAML 1.1 (PyYAML, what Prefect reads with) would read them back as
something else (``yes``, ``1.0``, ``2024-01-01``), and placeholders are double-quoted as in the
examples.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString
from ruamel.yaml.tag import Tag
from ruamel.yaml.util import load_yaml_guess_indent

from reconciler.desired import yamlfile
from reconciler.errors import ReconcileError

_EMPTY_VALUE = re.compile(r"^(?P<head>[^#]*?:)[ \t]*(?:null|Null|NULL|~|\[[ \t]*\])?[ \t]*(?P<comment>#.*)?$")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Plain scalars only from characters no YAML parser treats specially there (else double quotes).
_BLOCK_PLAIN = re.compile(r"[A-Za-z0-9_/.(][A-Za-z0-9_./ @+=~(),:-]*")
_FLOW_PLAIN = re.compile(r"[A-Za-z0-9_/.][A-Za-z0-9_./ @+=~-]*")
_DATE_LIKE = re.compile(r"^\s*\d{4}-\d{1,2}-\d{1,2}")
_STR_TAG = Tag(handle="!!", suffix="str")


class EditError(ReconcileError):
    """The file cannot be edited safely (its shape, or a check of the result failed)."""


@dataclass(frozen=True)
class Style:
    """Indentation in ruamel's terms: nested mappings, sequence item content, and the dash offset."""

    mapping: int = 2
    sequence: int = 4
    offset: int = 2


DEFAULT_STYLE = Style()
# the file's sections in apply order (Kind's): a new section goes before the first later one
ORDER = (
    "blocks",
    "variables",
    "concurrency_limits",
    "work_pools",
    "work_queues",
    "deployments",
    "automations",
)
_FLOW_LIST_WIDTH = 60  # a short list of scalars is written inline, as in ``tags: [a, b]``


def guess_style(text: str) -> Style:
    """The indentation the file already uses (the examples' style when it has no sequence)."""
    if not text.strip():
        return DEFAULT_STYLE
    try:
        _, indent, dash = load_yaml_guess_indent(text)
    except YAMLError:
        return DEFAULT_STYLE
    if indent is None or dash is None:
        return DEFAULT_STYLE
    sequence = max(indent, dash + 2)
    return Style(mapping=(sequence - dash) if dash else indent, sequence=sequence, offset=dash)


def dump_sections(
    sections: Mapping[str, Sequence[Mapping[str, Any]]], *, style: Style = DEFAULT_STYLE
) -> str:
    """The sections as top-level YAML, for printing (or appending to a file)."""
    parts = [_dump({key: list(items)}, style) for key, items in sections.items() if items]
    return "\n".join(parts)


def append(
    text: str, sections: Mapping[str, Sequence[Mapping[str, Any]]], *, file: str = "prefect.yaml"
) -> str:
    """``text`` with ``sections``' items appended to its sections.

    A section the file lacks is added before the first existing section that comes after it in
    ``ORDER`` (blocks, ..., deployments, automations: the order things are applied in), else at the end.
    """
    doc = _load_rt(text, file)
    style = guess_style(text)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    keys = list(doc)
    inserts: list[tuple[int, str]] = []
    tail: list[str] = []
    for key, items in sections.items():
        if not items:
            continue
        if key in doc:
            inserts.append(_insertion(doc, keys, key, items, lines, style, file))
            continue
        section = _dump({key: list(items)}, style)
        later = [k for k in keys if k in ORDER and ORDER.index(k) > ORDER.index(key)] if key in ORDER else []
        if later:
            at = _leading_comments(lines, doc.lc.key(later[0])[0])
            gap = "\n" if at > 0 and lines[at - 1].strip() else ""
            inserts.append((at, gap + section + "\n"))
        else:
            tail.append(section)
    # from the end, so earlier positions stay valid; two sections at one place keep their order
    for _, at, block in sorted(
        ((i, at, b) for i, (at, b) in enumerate(inserts)), key=lambda t: (t[1], t[0]), reverse=True
    ):
        lines[at:at] = [block]
    result = "".join(lines)
    if tail:
        if result and not result.endswith("\n\n"):
            result += "\n"
        result += "\n".join(tail)
    _verify(text, result, sections, file)
    return result


def _leading_comments(lines: list[str], key_line: int) -> int:
    """The first line of the comment block directly above a top-level key (it introduces the key)."""
    at = key_line
    while at > 0 and lines[at - 1].startswith("#"):
        at -= 1
    return at


# -- finding where a section ends ------------------------------------------------------------------


def _insertion(
    doc: CommentedMap,
    keys: list[Any],
    key: str,
    items: Sequence[Mapping[str, Any]],
    lines: list[str],
    style: Style,
    file: str,
) -> tuple[int, str]:
    """Where (line index) and what to insert so ``items`` extend section ``key``."""
    value = doc[key]
    key_line = doc.lc.key(key)[0]
    if value is None or (isinstance(value, CommentedSeq) and not value):
        match = _EMPTY_VALUE.match(lines[key_line].rstrip("\n"))
        if match is None or doc.lc.key(key)[1] != 0:
            raise EditError(f"{file}: cannot append to {key}: as written; add the items by hand")
        comment = f"  {match.group('comment')}" if match.group("comment") else ""
        lines[key_line] = f"{match.group('head')}{comment}\n"
        return key_line + 1, _dump_items(key, items, style)
    if not isinstance(value, CommentedSeq) or value.fa.flow_style():
        raise EditError(
            f"{file}: {key}: is not a block list ('- item' lines), so import cannot append to it; "
            "add the printed items by hand"
        )
    dash = value.lc.col
    first = value[0]
    content = first.lc.col if isinstance(first, CommentedMap) and first else dash + 2
    here = Style(mapping=style.mapping, sequence=max(content, dash + 2), offset=dash)
    position = keys.index(key)
    end = doc.lc.key(keys[position + 1])[0] if position + 1 < len(keys) else len(lines)
    while end > key_line + 1 and _belongs_to_next(lines[end - 1], dash):
        end -= 1
    return end, _dump_items(key, items, here)


def _belongs_to_next(line: str, dash: int) -> bool:
    """A blank line, or a comment left of the items: it introduces what follows, not the section."""
    stripped = line.strip()
    if not stripped:
        return True
    return stripped.startswith("#") and len(line) - len(line.lstrip()) < dash


# -- dumping -----------------------------------------------------------------------------------------


def _dump_items(key: str, items: Sequence[Mapping[str, Any]], style: Style) -> str:
    text = _dump({key: list(items)}, style)
    head, _, body = text.partition("\n")
    if head != f"{key}:":
        raise EditError(f"internal error: unexpected dump of {key}: {head!r}")
    return body


def _dump(data: Mapping[str, Any], style: Style) -> str:
    out = io.StringIO()
    _yaml(style).dump(_styled(data), out)
    return out.getvalue()


def _yaml(style: Style) -> YAML:
    dumper = YAML()
    dumper.width = 4096  # never fold a long string across lines
    dumper.indent(mapping=style.mapping, sequence=style.sequence, offset=style.offset)
    dumper.representer.add_representer(float, _represent_float)
    return dumper


def _represent_float(representer: Any, value: float) -> Any:
    """Floats as YAML 1.1 reads them: ``1.0e+16``, not ruamel's ``1e+16`` (a string to PyYAML)."""
    if value != value:
        text = ".nan"
    elif value in (float("inf"), float("-inf")):
        text = ".inf" if value > 0 else "-.inf"
    else:
        text = repr(value).lower()
        if "." not in text and "e" in text:
            text = text.replace("e", ".0e", 1)
    return representer.represent_scalar("tag:yaml.org,2002:float", text)


def _styled(value: Any) -> Any:
    """Plain data with each string wrapped in the scalar style that reads back as the same string."""
    if isinstance(value, Mapping):
        styled = CommentedMap()
        for k, v in value.items():
            styled[_string(k) if isinstance(k, str) else k] = _styled(v)
        return styled
    if isinstance(value, list | tuple):
        seq = CommentedSeq(_styled(v) for v in value)
        if _inline(value):
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, str):
        return _string(value)
    return value


def _inline(values: list[Any] | tuple[Any, ...]) -> bool:
    """A short list of one-line scalars reads best inline, as ``tags: [a, b]``."""
    if not values or sum(len(str(v)) + 2 for v in values) > _FLOW_LIST_WIDTH:
        return False
    for value in values:
        if isinstance(value, str):
            styled = _string(value)
            if type(styled) is str and not _FLOW_PLAIN.fullmatch(value):
                return False  # plain in a block, but a flow list would read it differently
            if isinstance(styled, LiteralScalarString | TaggedScalar):
                return False
        elif not isinstance(value, int | float | bool):
            return False
    return True


def _string(text: str) -> Any:
    """The scalar style that reads back as ``text``: plain when that is safe, else double quotes."""
    if _loader_misreads(text):
        return TaggedScalar(value=text, style='"', tag=_STR_TAG)
    if "\n" in text and _literal_ok(text):
        return LiteralScalarString(text)
    plain = _BLOCK_PLAIN.fullmatch(text) and ": " not in text and not text.endswith((":", " "))
    if plain and not _reads_differently(text):
        return text
    return DoubleQuotedScalarString(text)


def _loader_misreads(text: str) -> bool:
    """Whether the loader would read even the double-quoted string as something else (a date).

    A safety net for date-like strings: every YAML parser keeps a quoted scalar a string, and so does
    the loader today, but an explicit ``!!str`` tag would still be read right if a fast parser
    ever typed quoted dates again (yaml_rs does, on its own).
    """
    if not _DATE_LIKE.match(text):
        return False
    try:
        return yamlfile.parse("v: " + json.dumps(text), file="(string check)") != {"v": text}
    except ReconcileError:
        return True


def _literal_ok(text: str) -> bool:
    lines = text.split("\n")
    return (
        text.strip() != ""
        and not text[0].isspace()
        and all(line == line.rstrip() and line.isprintable() for line in lines)
    )


def _reads_differently(text: str) -> bool:
    """Whether the plain scalar would read back as anything but ``text``: by PyYAML (YAML 1.1, as
    Prefect reads) or by the loader's own parser (whose fast path reads ``_0`` as a number)."""
    if text == "" or text != text.strip():
        return True
    try:
        if yaml.load(text, Loader=_LOADER) != text:  # _LOADER is a safe loader
            return True
        return yamlfile.parse(f"v: {text}\n", file="(string check)") != {"v": text}
    except (yaml.YAMLError, ReconcileError):
        return True


# -- reading and checking -----------------------------------------------------------------------------


def _load_rt(text: str, file: str) -> CommentedMap:
    if not text.strip():
        return CommentedMap()
    try:
        doc = YAML(typ="rt").load(text)
    except YAMLError as exc:
        raise EditError(f"{file}: cannot edit: {' '.join(str(exc).split())}") from None
    if doc is None:
        return CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise EditError(f"{file}: the top level is not a mapping of sections")
    return doc


def _verify(before: str, after: str, sections: Mapping[str, Sequence[Mapping[str, Any]]], file: str) -> None:
    """The edit must read back (as the loader reads) as the old document plus exactly the new items."""
    old = yamlfile.parse(before, file=file) or {}
    new = yamlfile.parse(after, file=file) or {}
    expected = dict(old)
    for key, items in sections.items():
        if items:
            expected[key] = list(old.get(key) or []) + [_plain(i) for i in items]
    if new != expected:
        raise EditError(f"{file}: the edited file would not read back as intended; nothing was written")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
