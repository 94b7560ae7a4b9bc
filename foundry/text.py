"""Text people write for others to read (a version's message, a member's name), kept readable as
written: no control characters (a new line and a tab only where lines are), and none of the
bidirectional embeddings, overrides, isolates and marks, which make it read other than it is
written in the console, the API's answers and forge (a U+202E reverses what follows it; a
right-to-left mark U+200F around digits shows `0009 3214` as `3214 0009`). Text the platform
shows but does not refuse (a model's tool-call arguments) is shown with those characters escaped."""

import re
import unicodedata

# The direction characters: embeddings and overrides, isolates, and the marks (ALM, LRM, RLM).
DIRECTION = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSHOWN = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{DIRECTION}]")
_UNSHOWN_IN_A_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{DIRECTION}]")


def text_readable(text: str, *, lines: bool = False) -> bool:
    """Whether `text` shows as written (with new lines and tabs when `lines`)."""
    return not (_UNSHOWN if lines else _UNSHOWN_IN_A_LINE).search(text)


# What shows nothing by itself: spaces and line separators, controls, format characters (the
# zero-width space, word joiner, byte-order mark, soft hyphen), combining marks, and the letters
# and symbol drawn blank (the Hangul fillers, the blank Braille pattern).
_SHOWS_NOTHING = frozenset(("Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Mn", "Me"))
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def text_visible(text: str) -> bool:
    """Whether `text` shows at least one character: a name of zero-width characters alone would
    show as no name at all, where the console and the trail show a member's address instead."""
    return any(char not in _BLANK and unicodedata.category(char) not in _SHOWS_NOTHING for char in text)


_UNSHOWN_IN_JSON = re.compile(f"[\x7f-\x9f{DIRECTION}]")  # json.dumps escapes the rest


def text_shown(text: str) -> str:
    """Text the platform shows but does not refuse (a run's input, a model's answer, a tool's
    result, a name a model made up) with the characters that would make it read other than it is
    written escaped as `\\u202e`; its line breaks and tabs kept."""
    return _UNSHOWN.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def json_shown(text: str) -> str:
    """JSON text (json.dumps, ensure_ascii=False) with the characters that would make it read other
    than it is written escaped as JSON writes them (`\\u202e`): the same value, visibly."""
    return _UNSHOWN_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
