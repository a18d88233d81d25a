"""Line and column for a path in the file, computed only when there is something to report.

Valid files never pay for marks. When a diagnostic needs one, the file is parsed once more by
rapidyaml (C++, ~0.05 s for 3 MB) *in place*, so every scalar it returns is a view into our own
buffer: the view's address minus the buffer's address is the byte offset of that key or value in the
file. PyYAML's node graph (seconds for a large file) is only the fallback, for the rare file rapidyaml
cannot walk (it then also resolves merge keys the way PyYAML does).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import yaml

from reconciler.desired.yamlfile import Path, reference_loader
from reconciler.errors import Diagnostic

Position = tuple[int, int]


@dataclass
class Marks:
    """Locate paths of one file's text; each strategy is built at most once, on first use."""

    text: str
    file: str
    _fallback: dict[Path, tuple[Position, Position]] | None = field(default=None, repr=False)

    def locate(self, path: Path, *, key: bool = False) -> Position:
        """Position of the value at ``path`` (or of its key), else of the nearest ancestor found."""
        if self._fast is not None:
            found = self._fast.locate(tuple(path), key=key)
            if found is not None:
                return found
        return self._locate_fallback(tuple(path), key=key)

    def diagnostic(self, path: Path, message: str, *, key: bool = False) -> Diagnostic:
        line, col = self.locate(path, key=key)
        return Diagnostic(self.file, line, col, message)

    @cached_property
    def _fast(self) -> _RymlLocator | None:
        try:
            return _RymlLocator(self.text.encode("utf-8", "surrogatepass"))
        except Exception:  # rapidyaml missing or unable to parse: the fallback still answers
            return None

    def _locate_fallback(self, path: Path, *, key: bool) -> Position:
        if self._fallback is None:
            self._fallback = _index_with_pyyaml(self.text)
        probe = path
        while probe:
            if probe in self._fallback:
                key_pos, value_pos = self._fallback[probe]
                return key_pos if key else value_pos
            probe = probe[:-1]
        return (1, 1)


class _PyBuffer(ctypes.Structure):
    """CPython's Py_buffer, to read the address behind a (read-only) memoryview."""

    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    ]


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = [ctypes.POINTER(_PyBuffer)]


def _address(view: Any) -> int:
    info = _PyBuffer()
    if _get_buffer(view, ctypes.byref(info), 0) != 0:
        raise BufferError("no buffer")
    try:
        return int(info.buf or 0)
    finally:
        _release_buffer(ctypes.byref(info))


class _RymlLocator:
    """Walks rapidyaml's tree down a path and turns scalar views into byte offsets."""

    def __init__(self, data: bytes) -> None:
        import ryml

        self._ryml = ryml
        self._data = data
        self._buffer = bytearray(data)  # parsed in place: the tree points into this buffer
        self._tree = ryml.parse_in_place(self._buffer)
        self._base = _address(self._buffer)

    def locate(self, path: Path, *, key: bool) -> Position | None:
        """The deepest node of ``path`` that exists; its key only when the whole path was found."""
        node, deepest, complete = self._tree.root_id(), None, True
        for part in path:
            child = self._child(node, part)
            if child is None:
                complete = False
                break
            node = deepest = child
        if deepest is None:
            return None
        return self._position(deepest, key=key and complete)

    def _child(self, node: int, part: str | int) -> int | None:
        tree, none = self._tree, self._ryml.NONE
        if tree.is_map(node):
            child = tree.find_child(node, str(part).encode("utf-8"))
            return None if child == none else child
        if tree.is_seq(node) and isinstance(part, int) and 0 <= part < tree.num_children(node):
            return tree.child(node, part)
        return None

    def _position(self, node: int, *, key: bool) -> Position | None:
        tree = self._tree
        if key and tree.has_key(node):
            return self._offset_position(tree.key(node), quoted=tree.is_key_quoted(node))
        if tree.has_val(node) and not tree.is_container(node):
            block = tree.is_val_literal(node) or tree.is_val_folded(node)
            found = self._offset_position(tree.val(node), quoted=tree.is_val_quoted(node), block=block)
            if found is not None:
                return found
        if tree.is_container(node) and tree.num_children(node):
            first = tree.first_child(node)
            inner = self._position(first, key=tree.has_key(first))
            if inner is not None and tree.is_flow(node):
                return self._opening_bracket(inner)
            return inner
        if tree.has_key(node):
            return self._offset_position(tree.key(node), quoted=tree.is_key_quoted(node))
        return None

    def _opening_bracket(self, inner: Position) -> Position:
        """A flow collection starts at its ``{`` or ``[``, just before its first entry (as in PyYAML)."""
        line, col = inner
        text = self._data.split(b"\n", line)[line - 1].decode("utf-8", "replace")[: col - 1]
        stripped = text.rstrip()
        if stripped.endswith(("{", "[")):
            return (line, len(stripped))
        return inner

    def _offset_position(self, view: Any, *, quoted: bool = False, block: bool = False) -> Position | None:
        """Line and column of a scalar view, where PyYAML would put it: a quoted scalar starts at its
        opening quote, a literal/folded block at its ``|``/``>`` indicator."""
        if view is None or len(view) == 0:
            return None
        offset = _address(view) - self._base
        if not 0 <= offset < len(self._buffer):
            return None
        data = self._data
        if quoted and offset > 0 and data[offset - 1 : offset] in (b'"', b"'"):
            offset -= 1
        elif block:
            indicator = max(data.rfind(b"|", 0, offset), data.rfind(b">", 0, offset))
            offset = indicator if indicator >= 0 else offset
        line = data.count(b"\n", 0, offset) + 1
        line_start = data.rfind(b"\n", 0, offset) + 1
        col = len(data[line_start:offset].decode("utf-8", "replace")) + 1
        return (line, col)


def _index_with_pyyaml(text: str) -> dict[Path, tuple[Position, Position]]:
    """Every key and value position from PyYAML's node graph (merge keys resolved like Prefect's)."""
    index: dict[Path, tuple[Position, Position]] = {}
    try:
        root = yaml.compose(text, Loader=reference_loader(text))
    except yaml.YAMLError:
        return index
    stack: list[tuple[yaml.Node | None, Path]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == "<<":
                    sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                    stack.extend((source, path) for source in sources)
                    continue
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
                child = (*path, key)
                index.setdefault(child, (_pos(key_node), _pos(value_node)))
                stack.append((value_node, child))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                child = (*path, i)
                index.setdefault(child, (_pos(item), _pos(item)))
                stack.append((item, child))
    return index


def _pos(node: yaml.Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)
