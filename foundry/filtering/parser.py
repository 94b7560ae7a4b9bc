"""AIP-160 text → syntax tree. Knows nothing of fields or types; see compiler.py for that."""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from foundry.filtering.errors import FilterError

MAX_LENGTH = 4096
MAX_DEPTH = 32
MAX_TERMS = 200


@dataclass(frozen=True, slots=True)
class Literal:
    text: str
    quoted: bool
    pos: int
    # Offsets in `text` of unescaped "*" (wildcards in string equality); "\*" is a plain star.
    stars: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Member:
    parts: tuple[Literal, ...]
    pos: int

    @property
    def path(self) -> str:
        return ".".join(p.text for p in self.parts)


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple
    pos: int


@dataclass(frozen=True, slots=True)
class Restriction:
    comparable: Member | Call
    op: str | None
    arg: object  # Member | Call | a composite expression node
    pos: int


@dataclass(frozen=True, slots=True)
class And:
    left: object
    right: object


@dataclass(frozen=True, slots=True)
class Or:
    left: object
    right: object


@dataclass(frozen=True, slots=True)
class Not:
    child: object
    pos: int


@dataclass(frozen=True, slots=True)
class Composite:
    expression: object
    pos: int


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "*": "*"}


def _unquote(raw: str, pos: int) -> tuple[str, tuple[int, ...]]:
    body, out, stars, i = raw[1:-1], [], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise FilterError("invalid_escape", f"Unknown escape \\{nxt} in a string.", pos + 1 + i)
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        if ch == "*":
            stars.append(len(out))
        out.append(ch)
        i += 1
    return "".join(out), tuple(stars)


def _literal(token: Token) -> Literal:
    text = str(token)
    if token.type == "STRING":
        value, stars = _unquote(text, token.start_pos)
        return Literal(value, True, token.start_pos, stars)
    return Literal(text, False, token.start_pos, tuple(i for i, ch in enumerate(text) if ch == "*"))


@v_args(inline=True)
class _ToTree(Transformer_NonRecursive):
    def empty(self):
        return None

    def and_(self, left, *rest):
        return And(left, rest[-1])

    def or_(self, left, _op, right):
        return Or(left, right)

    def not_(self, op, child):
        return Not(child, op.start_pos)

    def composite(self, expression):
        return Composite(expression, -1)

    def member(self, *tokens):
        parts = tuple(_literal(t) for t in tokens)
        return Member(parts, parts[0].pos)

    def function(self, opening, *args):
        return Call(str(opening)[:-1], tuple(a for a in args if a is not None), opening.start_pos)

    def restriction(self, comparable, op=None, arg=None):
        return Restriction(comparable, str(op) if op is not None else None, arg, comparable.pos)


@cache
def _lark() -> Lark:
    grammar = (Path(__file__).with_name("grammar.lark")).read_text()
    return Lark(grammar, parser="lalr", maybe_placeholders=True)


def _precheck(text: str) -> None:
    """Refuse oversized or too deeply nested input before the parser sees it."""
    if len(text) > MAX_LENGTH:
        raise FilterError("filter_too_long", f"A filter has at most {MAX_LENGTH} characters.", MAX_LENGTH)
    depth, quote, escaped = 0, None, False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise FilterError("filter_too_deep", f"Parentheses nest at most {MAX_DEPTH} deep.", i)
        elif ch == ")":
            depth -= 1


def _position(error: UnexpectedInput, text: str) -> int:
    if isinstance(error, UnexpectedEOF):
        return len(text)
    if isinstance(error, UnexpectedToken) and error.token.type == "$END":
        return len(text)
    if isinstance(error, UnexpectedCharacters):
        return error.pos_in_stream
    return getattr(error.token, "start_pos", None) or getattr(error, "pos_in_stream", 0) or 0


def parse(text: str):
    """Parse an AIP-160 filter into a tree (None for an empty filter), or raise FilterError."""
    _precheck(text)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as e:
        pos = _position(e, text)
        shown = text[pos : pos + 12] or "the end"
        raise FilterError("syntax_error", f"Unexpected {shown!r} at position {pos}.", pos) from None
    if sum(1 for _ in tree.find_data("restriction")) > MAX_TERMS:
        raise FilterError("filter_too_many_terms", f"A filter has at most {MAX_TERMS} comparisons.", None)
    try:
        node = _ToTree().transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, FilterError):
            raise e.orig_exc from None
        raise
    return node
