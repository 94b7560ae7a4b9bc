"""AIP-160 text → syntax tree. Knows nothing of fields or types; see compiler.py for that."""

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.lexer import Lexer

from foundry.db.text import UNSTORABLE
from foundry.filtering.errors import FilterError

MAX_LENGTH = 4096
MAX_DEPTH = 32
MAX_TERMS = 200


@dataclass(slots=True)
class Literal:
    text: str
    quoted: bool
    pos: int
    # Offsets in `text` of unescaped "*" (wildcards in string equality); "\*" is a plain star.
    stars: tuple[int, ...] = ()


@dataclass(slots=True)
class Member:
    parts: tuple[Literal, ...]
    pos: int

    @property
    def path(self) -> str:
        return ".".join(p.text for p in self.parts)


@dataclass(slots=True)
class Call:
    name: str
    args: tuple
    pos: int


@dataclass(slots=True)
class Restriction:
    comparable: Member | Call
    op: str | None
    arg: object  # Member | Call | a composite expression node
    pos: int


@dataclass(slots=True)
class And:
    left: object
    right: object


@dataclass(slots=True)
class Or:
    left: object
    right: object


@dataclass(slots=True)
class Not:
    child: object
    pos: int


@dataclass(slots=True)
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
    text = token.value
    if token.type == "STRING":
        value, stars = _unquote(text, token.start_pos)
        return Literal(value, True, token.start_pos, stars)
    stars = tuple(i for i, ch in enumerate(text) if ch == "*") if "*" in text else ()
    return Literal(text, False, token.start_pos, stars)


class _ToTree(Transformer):
    """Runs inside the LALR parser at each reduction: no parse tree, no recursion.
    Callbacks take the children list as is (no v_args wrapper: this is the hot path)."""

    def empty(self, _children):
        return None

    def and_(self, children):
        return And(children[0], children[-1])

    def or_(self, children):
        return Or(children[0], children[-1])

    def not_(self, children):
        return Not(children[1], children[0].start_pos)

    def composite(self, children):
        return Composite(children[0], -1)

    def member(self, tokens):
        parts = tuple(_literal(t) for t in tokens)
        return Member(parts, parts[0].pos)

    def function(self, children):
        opening = children[0]
        return Call(opening.value[:-1], tuple(a for a in children[1:] if a is not None), opening.start_pos)

    def restriction(self, children):
        comparable = children[0]
        op = children[1].value if len(children) > 1 else None
        arg = children[2] if len(children) > 2 else None
        return Restriction(comparable, op, arg, comparable.pos)


def _token(kind: str, value: str, pos: int) -> Token:
    # Token(...) goes through several Python calls; the lexer makes one per token.
    token = str.__new__(Token, value)
    token.type, token.value, token.start_pos, token.end_pos = kind, value, pos, pos + len(value)
    token.line = token.end_line = 1
    token.column, token.end_column = pos + 1, pos + len(value) + 1
    return token


class _Lexer(Lexer):
    """One compiled alternation over the grammar's terminals, tried in priority order.

    Lark's own lexer is correct but, in pure Python, costs more than parsing itself; this one
    yields the same tokens (tests/filtering check both) several times faster.
    """

    __future_interface__ = False

    def __init__(self, lexer_conf):
        by_name = {t.name: t.pattern.to_regexp() for t in lexer_conf.terminals}
        order = [
            "WS",
            "FUNCTION_OPEN",
            "AND",
            "OR",
            "NOT",
            "NUMBER",
            "COMPARATOR",
            "MINUS",
            "STRING",
            "TEXT",
            "LPAR",
            "RPAR",
            "COMMA",
            "DOT",
        ]
        assert set(order) == set(by_name), "grammar terminals changed; update _Lexer"
        self.scanner = re.compile("|".join(f"(?P<{name}>{by_name[name]})" for name in order))

    def lex(self, data: str):
        match, end = self.scanner.match, len(data)
        pos = 0
        while pos < end:
            m = match(data, pos)
            if m is None:
                raise FilterError("syntax_error", f"Unexpected {data[pos : pos + 12]!r} at position {pos}.", pos)
            kind = m.lastgroup
            if kind != "WS":
                yield _token(kind, m.group(), pos)
            pos = m.end()


@cache
def _lark() -> Lark:
    grammar = (Path(__file__).with_name("grammar.lark")).read_text()
    return Lark(grammar, parser="lalr", lexer=_Lexer, maybe_placeholders=True, transformer=_ToTree())


def _precheck(text: str) -> None:
    """Refuse oversized or too deeply nested input before the parser sees it."""
    if len(text) > MAX_LENGTH:
        raise FilterError("filter_too_long", f"A filter has at most {MAX_LENGTH} characters.", MAX_LENGTH)
    bad = UNSTORABLE.search(text)
    if bad is not None:  # no PostgreSQL text can hold them
        raise FilterError("syntax_error", "A filter cannot contain NUL characters or lone surrogates.", bad.start())
    if text.count("(") <= MAX_DEPTH:
        return
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


def _count_terms(node) -> int:
    stack, count = [node], 0
    while stack:
        n = stack.pop()
        if isinstance(n, And | Or):
            stack += (n.left, n.right)
        elif isinstance(n, Not):
            stack.append(n.child)
        elif isinstance(n, Composite):
            stack.append(n.expression)
        elif isinstance(n, Restriction):
            count += 1
            if isinstance(n.arg, Composite):
                stack.append(n.arg.expression)
    return count


def parse(text: str):
    """Parse an AIP-160 filter into a tree (None for an empty filter), or raise FilterError."""
    _precheck(text)
    try:
        node = _lark().parse(text)
    except UnexpectedInput as e:
        pos = _position(e, text)
        shown = text[pos : pos + 12] or "the end"
        raise FilterError("syntax_error", f"Unexpected {shown!r} at position {pos}.", pos) from None
    except VisitError as e:
        if isinstance(e.orig_exc, FilterError):
            raise e.orig_exc from None
        raise
    if node is not None and _count_terms(node) > MAX_TERMS:
        raise FilterError("filter_too_many_terms", f"A filter has at most {MAX_TERMS} comparisons.", None)
    return node
