"""User-controlled text made inert for the terminal and for GitHub Markdown: one rule per medium.

A plan shows names, descriptions, tags, values, Git refs and flow names that a pull request's author
wrote. None of them may change what the output *is*: fake a ``Plan: 0 to create`` line in a
terminal, close a ``<details>`` block, ping ``@someone``, link ``#123``, close a code fence or the
Mermaid graph, or plant the sticky comment's marker.

* :func:`visible` (every medium): control characters (C0, DEL, C1), line and paragraph separators
  and invisible format characters (bidi overrides, zero-width characters, the BOM) are shown as
  escapes (``\\n``, ``\\x1b``, ``\\u202e``). No user string spans two lines, moves the cursor or
  reorders what follows it.
* :func:`escape` (Markdown, the ONE function every user string of a comment or job summary goes
  through): :func:`visible`, then

  - in text (Markdown inline or inside our HTML): HTML-escaped (``& < > " '``) and ``|`` and the
    backtick as entities, so no tag, comment, table cell or code span can open;
  - in code (a code span or fenced block, where entities are not decoded): a zero-width space
    after any ``<`` or ``&`` that could start a tag, comment or entity, so the text is inert even
    to a reader that ignores the code context;
  - in both: a zero-width space (U+200B, invisible) after every ``@`` and ``#`` and inside
    ``://``, ``www.``, ``](`` and ``GH-1``, so nothing mentions, references an issue or links.

  :func:`code_span` and :func:`fence` size their backtick runs longer than any run inside;
  :func:`mermaid_label` also encodes ``"`` as Mermaid's ``#quot;``.
"""

from __future__ import annotations

import re
import unicodedata

ZWSP = "\u200b"  # zero-width space: invisible, and breaks every GitHub autolink and mention pattern

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_TEXT_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "|": "&#124;"}
_TEXT_ENTITIES["`"] = "&#96;"
_TEXT_SPECIAL = re.compile("[&<>\"'|`]")
_CODE_OPENERS = re.compile(r"([<&])(?=[A-Za-z/!?#])")
_LINKERS = re.compile(r"[@#]|(?<=:)(?=//)|(?<=\bwww)(?=\.)|(?<=\])(?=\()|(?<=\bGH-)(?=[0-9])", re.IGNORECASE)
_BACKTICKS = re.compile(r"`+")


def visible(text: str) -> str:
    """``text`` with every control, separator and invisible format character shown as an escape."""
    if text.isprintable() and text.isascii():
        return text  # the common case, fast
    return "".join(_visible_char(c) for c in text)


def _visible_char(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    if unicodedata.category(char) not in _INVISIBLE_CATEGORIES:
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: str, *, code: bool = False) -> str:
    """User text for a GitHub comment or job summary: inert in text (``code=False``) or in code."""
    text = _LINKERS.sub(_break_link, visible(text))  # before entities: they hold a "#" of their own
    if code:
        return _CODE_OPENERS.sub(lambda m: m.group(1) + ZWSP, text)
    return _TEXT_SPECIAL.sub(lambda m: _TEXT_ENTITIES[m.group(0)], text)


def _break_link(match: re.Match[str]) -> str:
    return match.group(0) + ZWSP  # after "@" or "#"; at an empty match (inside "://"...) just ZWSP


def longest_backtick_run(text: str) -> int:
    return max((len(m) for m in _BACKTICKS.findall(text)), default=0)


def code_span(text: str) -> str:
    """An inline code span of escaped ``text``, delimited by more backticks than any run inside."""
    inner = escape(text, code=True)
    ticks = "`" * (longest_backtick_run(inner) + 1)
    if inner.startswith(("`", " ")) or inner.endswith(("`", " ")):
        inner = f" {inner} "  # CommonMark strips one space from each side
    return f"{ticks}{inner}{ticks}"


def fence(lines: list[str], info: str = "") -> list[str]:
    """A fenced code block around already-escaped lines, its fence longer than any run inside."""
    ticks = "`" * max(3, max((longest_backtick_run(line) for line in lines), default=0) + 1)
    return [f"{ticks}{info}", *lines, ticks]


def mermaid_label(text: str) -> str:
    """Text for inside a quoted Mermaid label ``["..."]``: escaped, ``"`` as ``#quot;``."""
    return escape(text, code=True).replace('"', "#quot;")
