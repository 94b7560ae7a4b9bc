"""The hand-tuned lexer yields exactly the tokens lark's own lexer derives from the grammar."""

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from lark import Lark
from lark.exceptions import UnexpectedCharacters

import foundry.filtering.parser as parser_module
from foundry.filtering import FilterError
from foundry.filtering.parser import _lark

REFERENCE = Lark(Path(parser_module.__file__).with_name("grammar.lark").read_text(), parser="lalr", lexer="basic")


OURS = parser_module._Lexer(_lark().lexer_conf)


def _ours(text: str):
    try:
        return [(t.type, t.value, t.start_pos) for t in OURS.lex(text)]
    except FilterError as e:
        return ("error", e.position)


def _reference(text: str):
    try:
        return [(t.type, t.value, t.start_pos) for t in REFERENCE.lex(text) if t.type != "WS"]
    except UnexpectedCharacters as e:
        return ("error", e.pos_in_stream)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "name",
                "a.b",
                "AND",
                "ANDROID",
                "OR",
                "NOT",
                "-",
                "-5",
                "3.14",
                "1e9",
                "3600s",
                "f(",
                "x.y(",
                "(",
                ")",
                "=",
                "!=",
                "<=",
                ">",
                ":",
                "*",
                ",",
                '"q\\"s"',
                "'s'",
                '"open',
                "é",
                "\\",
                "\t",
                " ",
            ]
        ),
        max_size=12,
    ).map("".join)
    | st.text(max_size=30)
)
def test_tokens_match_the_reference_lexer(text):
    assert _ours(text) == _reference(text)
