"""Query-string parameters read once: given twice (`?days=7&days=30`), a parameter is refused rather
than one of its values guessed at (the API's lists, exports and statements, the console's pages)."""

from foundry.errors import ServiceError


def query_once(query, name: str, code: str, *, error: type[Exception] = ServiceError) -> str | None:
    """`name`'s value in `query` (a QueryDict), None when not given; `error(code, message)` when given
    more than once."""
    values = query.getlist(name)
    if len(values) > 1:
        raise error(code, f"Give {name} at most once.")
    return values[0] if values else None
