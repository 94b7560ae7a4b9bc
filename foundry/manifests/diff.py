"""What changed between two versions of a document: structurally (per entity, field, rule, tool…) and as text.

The structural diff compares parsed content, so reordering keys or list items that are keyed by
name (relationships, rules, tools, tests) changes nothing. Changes come in the document's order
of sections, and by name within a section, so the same two versions always give the same list.
Documents are expected to be valid; an invalid one is still diffed without raising.
"""

import json
from dataclasses import asdict, dataclass

import patiencediff

_MISSING = object()


@dataclass(frozen=True, slots=True)
class Change:
    """One difference. `before` is None when added, `after` is None when removed."""

    action: str  # "added" | "removed" | "changed"
    what: str  # "entity", "field", "tool", "domain pin", …
    name: str  # "invoice", "invoice.amount", "find_invoices", …
    before: object = None
    after: object = None

    def as_dict(self) -> dict:
        return asdict(self)


def _same(a, b) -> bool:
    """Equal as JSON: `true` is not `1`, nor is `1` the same as `1.0`."""
    return a == b and json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _compare(what: str, name: str, before=_MISSING, after=_MISSING) -> list[Change]:
    if before is after or _same(before, after):  # `is`: both missing
        return []
    if before is _MISSING:
        return [Change("added", what, name, None, after)]
    if after is _MISSING:
        return [Change("removed", what, name, before, None)]
    return [Change("changed", what, name, before, after)]


def _compare_mappings(what: str, old, new, prefix: str = "") -> list[Change]:
    """One change per key of two mappings, in key order."""
    old, new = _mapping(old), _mapping(new)
    changes = []
    for key in sorted(old.keys() | new.keys()):
        changes += _compare(what, prefix + key, old.get(key, _MISSING), new.get(key, _MISSING))
    return changes


def _mapping(value) -> dict:
    return value if isinstance(value, dict) else {}


def _by_name(items) -> dict:
    """A list of named items as {name: item}; an item without a usable name is keyed by its position."""
    keyed: dict = {}
    for i, item in enumerate(items if isinstance(items, list) else []):
        name = item.get("name") if isinstance(item, dict) else None
        key = name if isinstance(name, str) and name not in keyed else f"#{i}"
        keyed[key] = item
    return keyed


def _without(mapping: dict, key: str) -> dict:
    return {k: v for k, v in mapping.items() if k != key}


def _metadata(old: dict, new: dict) -> list[Change]:
    """Name and description as themselves, labels one by one (as `labels.team`)."""
    old_meta, new_meta = _mapping(old.get("metadata")), _mapping(new.get("metadata"))
    changes = _compare_mappings("metadata", _without(old_meta, "labels"), _without(new_meta, "labels"))
    return changes + _compare_mappings("metadata", old_meta.get("labels"), new_meta.get("labels"), "labels.")


def _entities(old: dict, new: dict) -> list[Change]:
    """Entities added or removed whole; for one in both, its own attributes, then field by field."""
    changes = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name, _MISSING), new.get(name, _MISSING)
        if before is _MISSING or after is _MISSING:
            changes += _compare("entity", name, before, after)
            continue
        before, after = _mapping(before), _mapping(after)
        changes += _compare("entity", name, _without(before, "fields"), _without(after, "fields"))
        changes += _compare_mappings("field", before.get("fields"), after.get("fields"), f"{name}.")
    return changes


def _domain(old: dict, new: dict) -> list[Change]:
    old_spec, new_spec = _mapping(old.get("spec")), _mapping(new.get("spec"))
    return [
        *_metadata(old, new),
        *_entities(_mapping(old_spec.get("entities")), _mapping(new_spec.get("entities"))),
        *_compare_mappings(
            "relationship", _by_name(old_spec.get("relationships")), _by_name(new_spec.get("relationships"))
        ),
        *_compare_mappings("rule", _by_name(old_spec.get("rules")), _by_name(new_spec.get("rules"))),
        *_compare_mappings("glossary term", old_spec.get("glossary"), new_spec.get("glossary")),
    ]


def _approvals(old_spec: dict, new_spec: dict) -> list[Change]:
    """Tools added to or removed from the approval list (its order means nothing)."""
    before, after = ({t for t in _approval_list(spec) if isinstance(t, str)} for spec in (old_spec, new_spec))
    changes = []
    for name in sorted(before | after):
        changes += _compare(
            "approvals", name, name if name in before else _MISSING, name if name in after else _MISSING
        )
    return changes


def _approval_list(spec: dict) -> list:
    tools = _mapping(spec.get("approvals")).get("tools")
    return tools if isinstance(tools, list) else []


def _agent(old: dict, new: dict) -> list[Change]:
    old_spec, new_spec = _mapping(old.get("spec")), _mapping(new.get("spec"))

    def single(what: str, key: str) -> list[Change]:
        return _compare(what, key, old_spec.get(key, _MISSING), new_spec.get(key, _MISSING))

    return [
        *_metadata(old, new),
        *single("domain pin", "domain"),
        *single("model", "model"),
        *single("instructions", "instructions"),
        *_compare_mappings("tool", _by_name(old_spec.get("tools")), _by_name(new_spec.get("tools"))),
        *_approvals(old_spec, new_spec),
        *_compare_mappings("limits", old_spec.get("limits"), new_spec.get("limits")),
        *_compare_mappings("test", _by_name(old_spec.get("tests")), _by_name(new_spec.get("tests"))),
    ]


def structural_diff(kind: str, old: dict, new: dict) -> list[Change]:
    """The changes from `old` to `new`, two documents of `kind` ("domain" or "agent")."""
    if kind == "domain":
        return _domain(_mapping(old), _mapping(new))
    if kind == "agent":
        return _agent(_mapping(old), _mapping(new))
    raise ValueError(f"kind must be 'domain' or 'agent', not {kind!r}")


def _lines(source: str) -> list[str]:
    """Lines split at "\\n" only, as git splits them, with their ends."""
    lines = [line + "\n" for line in source.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def text_diff(old_source: str, new_source: str, old_label: str, new_label: str) -> str:
    """A unified diff of two texts ("" when they are equal), as `diff -u` and git print it.

    The lines are matched by patience diff (patiencediff's compiled matcher), near-linear where
    difflib's matcher is quadratic (two 100k-line versions with 1,000 changed lines: 0.13 s
    against 28 s): any viewer may ask for a diff."""
    old, new = _lines(old_source), _lines(new_source)
    out = []
    for group in patiencediff.PatienceSequenceMatcher(None, old, new).get_grouped_opcodes(3):
        if not out:
            out += [f"--- {old_label}\n", f"+++ {new_label}\n"]
        first, last = group[0], group[-1]
        out.append(f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@\n")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [" " + line for line in old[i1:i2]]
                continue
            out += ["-" + line for line in old[i1:i2]]
            out += ["+" + line for line in new[j1:j2]]
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in out)


def _range(start: int, stop: int) -> str:
    """A hunk's range as diff -u writes it: `start,length`, the length left out when it is 1."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start + 1 if length else start},{length}"
