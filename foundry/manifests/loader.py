"""Safe YAML: plain data only, bounded, with the line and column of every value.

libyaml composes the node graph (aliases stay shared, so a "billion laughs" costs nothing yet);
the expanded size and depth are then measured on that graph, memoised per node, and only a
document within bounds is turned into Python values. No tag outside YAML's plain data types is
accepted, duplicate keys are refused, and booleans are only `true`/`false` (not YAML 1.1's
`yes`/`no`/`on`/`off`, which stay strings); a number YAML 1.2 reads otherwise (`010`, `1_000`,
`1:30`) is refused.
"""

import math
import re
from dataclasses import dataclass, field
from functools import cached_property

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from foundry.manifests.problems import DocumentError, Problem, pointer

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 50_000  # after alias expansion
MAX_SCALAR = 100_000  # characters
# An integer scalar longer than Python converts to or from decimal text (sys.int_info's default
# limit), with room for a sign and `_` separators: refused, or a decimal kept as written.
_INT_MAX_CHARS = 5_000

_OTHERWISE = (
    "{text!r} is read otherwise by YAML 1.2 tools and editors than here, in YAML 1.1's notation"
    " (`010` is 8 here, 10 there; `1_000` and `1:30` are text there, `1e-1` and `0o17` text here):"
    " write it in decimal, or quote it as text."
)


def _read_otherwise(text: str, *, integer: bool) -> bool:
    """Whether a number's spelling means another value (or no number) in YAML 1.2, as the
    editors and schema validators people check a document with read it: `_` separators and base
    60 (`1:30`) anywhere, and for an integer a leading zero (YAML 1.1's octal) or `0b`."""
    body = text.strip().lstrip("+-")
    if "_" in body or ":" in body:
        return True
    return integer and (body[:2].lower() == "0b" or (len(body) > 1 and body[0] == "0" and body[1].isdigit()))


# The numbers of YAML 1.2's core schema (its int and float patterns, section 10.3.2): a plain
# scalar spelt so, which YAML 1.1 reads as text (`1e-1`, `+.5`, `0o17`), is a number there.
_YAML12_NUMBER = re.compile(
    r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
)
_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_SEQ, _MAP, _TIMESTAMP, _MERGE = (_TAG + t for t in ("seq", "map", "timestamp", "merge"))
_SCALAR_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP}
_LIBYAML = hasattr(yaml, "CSafeLoader")
_scalars = SafeConstructor()


class _TooManyNodes(Exception):
    pass


class _Loader(yaml.CSafeLoader if _LIBYAML else yaml.SafeLoader):
    """Stops composing at MAX_NODES distinct values, so a huge flat document costs no more than that."""

    def __init__(self, stream):
        super().__init__(stream)
        self.nodes = 0

    def descend_resolver(self, parent, index):
        # Called once per node the composer makes, tagged (`!!str x`, `!a`) or not; `resolve` is
        # called for untagged ones only, and a document of tagged values was composed whole.
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooManyNodes
        return super().descend_resolver(parent, index)


@dataclass
class Loaded:
    """A document as plain data, with where each value (and each mapping key) came from."""

    data: object
    file: str
    text: str
    positions: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[tuple, tuple[int, int]] = field(default_factory=dict)

    @cached_property
    def lines(self) -> list[str]:
        """The text's lines (`source_lines`), split once however many problems point into them."""
        return source_lines(self.text)

    def where(self, path: tuple, *, key: bool = False) -> tuple[int, int]:
        """(line, column) of the value at `path` (of its key if `key`), else its nearest parent."""
        path = tuple(path)
        if key and path in self.key_positions:
            return self.key_positions[path]
        while path not in self.positions and path:
            path = path[:-1]
        return self.positions.get(path, (1, 1))

    def problem(self, code: str, message: str, path: tuple = (), *, key: bool = False) -> Problem:
        line, column = self.where(path, key=key)
        return Problem(code, message, self.file, line, column, pointer(path))


def _at(file: str, node: Node, code: str, message: str, path: tuple = ()) -> Problem:
    mark = node.start_mark
    return Problem(code, message, file, mark.line + 1, mark.column + 1, pointer(path))


def _measure(root: Node, file: str) -> None:
    """Refuse a graph that is cyclic, deeper than MAX_DEPTH, or larger once expanded than
    MAX_NODES values or MAX_BYTES characters of text (a long string repeated through aliases: a
    document within the size limit must not become a larger one)."""
    sizes: dict[int, tuple[int, int, int]] = {}  # id(node) -> (expanded size, height, characters)
    active: set[int] = set()
    unique = 0

    def refuse(node: Node, size: int, text: int) -> None:
        if size > MAX_NODES:
            code = "yaml_alias_expansion" if unique < size else "yaml_too_large"
            raise DocumentError([_at(file, node, code, f"The document expands to more than {MAX_NODES} values.")])
        if text > MAX_BYTES:  # only reached through aliases: the source itself is at most MAX_BYTES
            message = f"The document expands to more than {MAX_BYTES} characters of text."
            raise DocumentError([_at(file, node, "yaml_alias_expansion", message)])

    def visit(node: Node, depth: int, parent: Node) -> tuple[int, int, int]:
        nonlocal unique
        key = id(node)
        if key in sizes:  # met again through an alias: reported where the alias is, in `parent`
            size, height, text = sizes[key]
            if depth + height > MAX_DEPTH:
                raise DocumentError([_at(file, parent, "yaml_too_deep", f"Nesting deeper than {MAX_DEPTH} levels.")])
            return sizes[key]
        if depth > MAX_DEPTH:
            raise DocumentError([_at(file, node, "yaml_too_deep", f"Nesting deeper than {MAX_DEPTH} levels.")])
        if key in active:
            raise DocumentError([_at(file, parent, "yaml_recursive_alias", "An alias refers to a node containing it.")])
        unique += 1
        size, height, text = 1, 0, 0
        if isinstance(node, SequenceNode | MappingNode):
            active.add(key)
            children = node.value if isinstance(node, SequenceNode) else [n for pair in node.value for n in pair]
            for child in children:
                child_size, child_height, child_text = visit(child, depth + 1, node)
                size += child_size
                text += child_text
                height = max(height, child_height + 1)
                refuse(node, size, text)
            active.discard(key)
        else:
            text = len(node.value)
        sizes[key] = (size, height, text)
        return size, height, text

    visit(root, 0, root)


class _Builder:
    def __init__(self, file: str, source: str):
        self.file = file
        self.source = source
        self.offset = 1 if source.startswith("\ufeff") else 0  # libyaml's marks skip a leading BOM
        self.problems: list[Problem] = []
        self.positions: dict[tuple, tuple[int, int]] = {}
        self.key_positions: dict[tuple, tuple[int, int]] = {}

    def _tagged(self, node: ScalarNode) -> bool:
        """Whether a plain scalar's properties, written before it, hold a tag (`!!str`, `!`)."""
        span = self.source[node.start_mark.index + self.offset : node.end_mark.index + self.offset]
        if not span.endswith(node.value):
            return True  # not where the marks say: taken as written
        return any(token.startswith("!") for token in span[: len(span) - len(node.value)].split())

    def refuse(self, node: Node, code: str, message: str, path: tuple) -> None:
        self.problems.append(_at(self.file, node, code, message, path))

    def build(self, node: Node, path: tuple):
        mark = node.start_mark
        self.positions[path] = (mark.line + 1, mark.column + 1)
        if isinstance(node, MappingNode):
            return self.mapping(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                self.refuse(node, "yaml_tag_forbidden", f"Tag {node.tag!r} is not allowed.", path)
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        return self.scalar(node, path)

    def mapping(self, node: MappingNode, path: tuple) -> dict:
        if node.tag != _MAP:
            self.refuse(node, "yaml_tag_forbidden", f"Tag {node.tag!r} is not allowed.", path)
        out: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                self.refuse(key_node, "yaml_merge_key", "Merge keys (<<) are not supported; write keys out.", path)
                continue
            if not isinstance(key_node, ScalarNode) or key_node.tag not in _SCALAR_TAGS:
                self.refuse(key_node, "yaml_key_not_string", "Mapping keys must be plain strings.", path)
                continue
            key = key_node.value
            if "\x00" in key:
                self.refuse(key_node, "yaml_text_invalid", "Keys may not contain NUL characters.", path)
                continue
            child = (*path, key)
            if key in out:
                first = self.key_positions[child][0]
                self.refuse(key_node, "yaml_duplicate_key", f"Duplicate key {key!r} (first on line {first}).", child)
                continue
            self.key_positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = self.build(value_node, child)
        return out

    def scalar(self, node: ScalarNode, path: tuple):
        tag, text = node.tag, node.value
        if len(text) > MAX_SCALAR:
            self.refuse(node, "yaml_scalar_too_long", f"A value longer than {MAX_SCALAR} characters.", path)
            return ""
        if tag not in _SCALAR_TAGS:
            self.refuse(node, "yaml_tag_forbidden", f"Tag {tag!r} is not allowed.", path)
            return None
        if tag == _NULL:
            return None
        if tag == _BOOL:
            lowered = text.lower()
            return lowered == "true" if lowered in ("true", "false") else text
        if tag == _INT:
            if len(text) > _INT_MAX_CHARS:  # past Python's digit limit, whatever its base: not converted
                if text.strip().lstrip("+-").isdigit():
                    return text  # a decimal too long to convert: kept as written
                # Converting first would cost time quadratic in the length (base 60: `1:59:59:…`).
                self.refuse(node, "yaml_invalid_number", "An integer this long is not allowed.", path)
                return None
            if _read_otherwise(text, integer=True):
                self.refuse(node, "yaml_invalid_number", _OTHERWISE.format(text=text), path)
                return None
            try:
                value = _scalars.construct_yaml_int(node)
                str(value)  # hex, octal and binary escape Python's digit limit; printing them does not
            except ValueError:
                if text.strip().lstrip("+-").isdigit():
                    return text  # a decimal too long to convert: kept as written
                self.refuse(node, "yaml_invalid_number", f"{text!r} is not an integer.", path)
                return None
            except IndexError:  # an explicit !!int tag on an empty or sign-only value
                self.refuse(node, "yaml_invalid_number", f"{text!r} is not an integer.", path)
                return None
            return value
        if tag == _FLOAT:
            if _read_otherwise(text, integer=False):
                self.refuse(node, "yaml_invalid_number", _OTHERWISE.format(text=text), path)
                return None
            try:
                value = _scalars.construct_yaml_float(node)
            except (ValueError, IndexError):  # an explicit !!float tag on what is no number
                self.refuse(node, "yaml_invalid_number", f"{text!r} is not a number.", path)
                return None
            if not math.isfinite(value):
                self.refuse(node, "yaml_invalid_number", "Infinity and NaN are not allowed.", path)
            return value
        if not node.style and _YAML12_NUMBER.fullmatch(text) and not self._tagged(node):
            # Plain, untagged text that YAML 1.2 tools read as a number (`!!str 1e-1` is text
            # there too: taken as written; an anchor changes nothing).
            self.refuse(node, "yaml_invalid_number", _OTHERWISE.format(text=text), path)
            return None
        if "\x00" in text:  # written as the escape "\0": no text column or jsonb value takes it
            self.refuse(node, "yaml_text_invalid", "Text may not contain NUL characters.", path)
            return None
        return text  # str, and timestamps kept as written


# YAML's line breaks, as its readers count lines: CR LF, a lone CR (classic Mac), LF, NEL, LS, PS.
_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def source_lines(text: str) -> list[str]:
    """The text's lines as YAML's marks number them (str.splitlines also splits at \\v, \\f, ...)."""
    return _BREAK.split(text)


def _end_mark(before: str) -> tuple[int, int]:
    """(line, column), 1-based, of the character that follows `before`."""
    lines = source_lines(before)
    return len(lines), len(lines[-1]) + 1


def _reader_mark(source: str, position: int) -> tuple[int, int]:
    """(line, column) of a reader error: libyaml gives a byte offset into the UTF-8 text, PyYAML an index."""
    before = source.encode("utf-8")[:position].decode("utf-8", "ignore") if _LIBYAML else source[:position]
    return _end_mark(before)


def compose(source: str) -> Node:
    """The YAML node graph of `source` as `load` reads it (libyaml where present), marks in characters."""
    return yaml.compose(source, Loader=_Loader)


def load(source: str | bytes, file: str = "<input>") -> Loaded:
    """Parse one YAML document. Raises DocumentError (with every problem found) when unsafe or invalid."""
    size = len(source) if isinstance(source, bytes) else len(source.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise DocumentError(
            [Problem("yaml_too_large", f"The document is larger than {MAX_BYTES} bytes, the limit.", file)]
        )
    try:
        if isinstance(source, bytes):
            source = source.decode("utf-8")
        else:
            source.encode("utf-8")  # a str may hold lone surrogates, which no UTF-8 file can
    except UnicodeError as exc:
        before = source[: exc.start]  # what precedes the first bad byte (or lone surrogate) is good text
        line, _ = _end_mark(before.decode("utf-8") if isinstance(before, bytes) else before)
        raise DocumentError([Problem("encoding_invalid", "The document is not valid UTF-8.", file, line)]) from None
    try:
        root = yaml.compose(source, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part) or "Invalid YAML."
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise DocumentError(
            [Problem("yaml_syntax", message[:1].upper() + message[1:] + ".", file, line, column)]
        ) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, such as a control character
        message = str(exc).splitlines()[0]
        line, column = _reader_mark(source, exc.position)
        raise DocumentError(
            [Problem("yaml_syntax", message[:1].upper() + message[1:] + ".", file, line, column)]
        ) from None
    except yaml.YAMLError as exc:  # any other error libyaml may raise
        raise DocumentError([Problem("yaml_syntax", (str(exc) or "Invalid YAML.").splitlines()[0], file)]) from None
    except _TooManyNodes:
        raise DocumentError(
            [Problem("yaml_too_large", f"The document has more than {MAX_NODES} values.", file)]
        ) from None
    if root is None:
        raise DocumentError([Problem("yaml_empty", "The document is empty.", file)])
    _measure(root, file)
    builder = _Builder(file, source)
    data = builder.build(root, ())
    if builder.problems:
        raise DocumentError(builder.problems)
    if not isinstance(data, dict):
        raise DocumentError([_at(file, root, "yaml_not_mapping", "The document must be a mapping of keys to values.")])
    return Loaded(data, file, source, builder.positions, builder.key_positions)
