"""How lenient servers may read a name (a field's, an argument's): one place for the runtime's
look-alike checks (foundry/runtime/rules.py) and validation's reserved names."""

import unicodedata


def name_fold(name: str) -> str:
    """A field name as lenient servers may read it: compatibility forms made plain (NFKC: fullwidth
    letters are ASCII), without case — upper-cased first, so a dotless i (U+0131) reads as `i` as
    it does to case-insensitive comparisons — and without spaces of any kind, invisible format
    characters, combining marks, hyphens or underscores."""
    plain = unicodedata.normalize("NFKC", name)
    kept = (
        char
        for char in plain
        if char not in "-_" and not char.isspace() and unicodedata.category(char) not in ("Cf", "Cc", "Zs")
    )
    folded = unicodedata.normalize("NFD", "".join(kept).upper().casefold())
    # Without combining marks: a dotted capital I folds to i + U+0307, where most case-insensitive
    # comparisons read a plain i.
    return "".join(char for char in folded if unicodedata.category(char) != "Mn")
