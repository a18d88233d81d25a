"""Parse ``prefect.yaml`` fast, as Prefect would read it (line marks: see ``marks.py``).

Prefect reads its file with PyYAML (YAML 1.1). PyYAML's C loader needs seconds for a file of 10,000
deployments, so valid files take a fast path through ``yaml_rs`` (a Rust YAML 1.2 parser, ~25x
faster). YAML 1.1 and 1.2 disagree on a few plain scalars (``yes``/``on``, ``0755``, ``1:20``,
``1_000``, ``1e3``, ``0o7``), on ``<<`` merge keys and on tags; a cheap scan of the text sends any file
containing such a token to PyYAML, so the result is always what Prefect would read (a property test
holds the two paths equal). Marks are built only on the error path, by composing the node graph with
PyYAML and indexing every key and value by its path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml
import yaml_rs

from reconciler.errors import Diagnostic, SpecError

Path = tuple[str | int, ...]

_BOOL11 = rb"(?:yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)"
# Each pattern starts with a narrow character class so ``re`` can skip ahead fast (~60 ms for 3 MB).
_YAML11_RISKS = (
    # plain scalars after a separator: 1.1 octal / 0b / 0o / 0x_, leading-dot floats, yes/no/on/off,
    # and a lone `=` (PyYAML's `value` tag, which it cannot construct)
    re.compile(
        rb"[ \t\[{,](?:[-+]?(?:0[0-9box_]|\.[0-9_]|_[0-9_])|(?:=|" + _BOOL11 + rb")[ \t]*(?:$|[,\]}:#]))",
        re.M,
    ),
    # after a digit: underscores in numbers (1_000), exponent floats without a dot or sign (1e3: a
    # float in 1.2, a string in 1.1), sexagesimal numbers (1:20)
    re.compile(
        rb"[0-9](?:_[0-9]|[eE][-+]?[0-9]|:[0-5]?[0-9](?::[0-5]?[0-9])*(?:\.[0-9]*)?[ \t]*(?:$|[,\]}#]))", re.M
    ),
    # a 1.1 boolean as a top-level key (``on:``)
    re.compile(rb"^" + _BOOL11 + rb"[ \t]*:", re.M),
    # a plain (unquoted) timestamp: a date object in PyYAML (yaml_rs is asked for strings only, so
    # that a quoted date stays a string as it does in PyYAML); a document never starts with one
    re.compile(rb"[ \t\[{,\n][0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"),
)


def needs_yaml11(text: str) -> bool:
    """True when the text may hold a construct YAML 1.1 (PyYAML, as Prefect) reads differently from 1.2.

    Errs on the side of True: a false alarm costs only speed, never correctness.
    """
    data = text.encode("utf-8", "surrogatepass")
    if b"!" in data or b"<<" in data:
        return True
    return any(pattern.search(data) for pattern in _YAML11_RISKS)


def parse(text: str, *, file: str) -> Any:
    """The document as Prefect would load it; a syntax error raises SpecError with its location."""
    if not needs_yaml11(text):
        try:
            return yaml_rs.loads(text, parse_datetime=False) if text.strip() else None
        except Exception:  # any fast-path failure is re-read by the reference parser
            pass
    return _parse_pyyaml(text, file=file)


def _parse_pyyaml(text: str, *, file: str) -> Any:
    """The reference parse (PyYAML, as Prefect): one compose, a duplicate-key check, one construct."""
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_cls(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_duplicate_keys(root, file=file)
        return loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise SpecError([Diagnostic(file, line, col, f"invalid YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Diagnostic(file, 1, 1, f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()


def _check_duplicate_keys(root: yaml.Node, *, file: str) -> None:
    """A repeated key silently loses data in PyYAML; we refuse it, pointing at the second one."""
    problems: list[Diagnostic] = []
    for node in _walk_nodes(root):
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    if key.value in seen:
                        m = key.start_mark
                        problems.append(
                            Diagnostic(file, m.line + 1, m.column + 1, f"duplicate key {key.value!r}")
                        )
                    seen.add(key.value)
    if problems:
        raise SpecError(problems)


def _walk_nodes(node: yaml.Node | None) -> Iterator[yaml.Node]:
    stack, seen = [node], set()
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, yaml.MappingNode):
            for k, v in current.value:
                stack.extend((k, v))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def format_path(path: Path) -> str:
    """``deployments[3].work_pool.name``: how messages name a place in the file."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
