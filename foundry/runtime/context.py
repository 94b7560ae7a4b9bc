"""The system context a model is given: the manifest's instructions and the pinned DIS, compactly.

One line per entity (key, fields with their types), relationship, rule and glossary term, so a
large domain costs few tokens; `dis_query` tools give the detail of one entity on demand.
"""

from collections.abc import Mapping


def _field_type(definition: Mapping) -> str:
    kind = definition.get("type", "?")
    if kind == "enum":
        return "enum(" + "|".join(definition.get("values") or ()) + ")"
    if kind == "reference":
        return f"→{definition.get('entity')}"
    if kind == "list":
        return f"list[{_field_type(definition.get('items') or {})}]"
    return kind


def _entity_line(name: str, entity: Mapping) -> str:
    fields = ", ".join(
        f"{field} {_field_type(d)}{'!' if d.get('required') else ''}"
        for field, d in (entity.get("fields") or {}).items()
    )
    key = f" (key {entity['key']})" if entity.get("key") else ""
    about = f" {entity['description']}" if entity.get("description") else ""
    return f"- {name}{key}:{about} Fields: {fields}"


def domain_summary(domain: Mapping, version: int | None = None) -> str:
    """The DIS as compact text: entities (`!` marks required fields), relationships, rules, glossary."""
    metadata, spec = domain.get("metadata") or {}, domain.get("spec") or {}
    title = f"Domain {metadata.get('name', '?')}" + (f" v{version}" if version is not None else "")
    if metadata.get("description"):
        title += f": {metadata['description']}"
    lines = [title, "Entities (! marks a required field):"]
    lines += [_entity_line(name, e) for name, e in (spec.get("entities") or {}).items()]
    if spec.get("relationships"):
        lines.append("Relationships:")
        lines += [
            f"- {r['name']}: {r['from']} → {r['to']}"
            + (f" via {r['via']}" if r.get("via") else "")
            + f" ({r['cardinality']})"
            for r in spec["relationships"]
        ]
    if spec.get("rules"):
        lines.append("Business rules (enforced on tool calls):")
        lines += [
            f"- {r['name']} on {r['entity']}: when {r['when']} → {r['then']}"
            + (f". {r['message']}" if r.get("message") else "")
            for r in spec["rules"]
        ]
    if spec.get("glossary"):
        lines.append("Glossary:")
        lines += [f"- {term}: {text}" for term, text in spec["glossary"].items()]
    return "\n".join(lines)


def system_prompt(manifest: Mapping, domain: Mapping) -> str:
    spec = manifest["spec"]
    parts = [spec["instructions"].strip(), domain_summary(domain, spec["domain"].get("version"))]
    approvals = (spec.get("approvals") or {}).get("tools") or ()
    if approvals:
        parts.append("These tools wait for a human approver before they run: " + ", ".join(approvals) + ".")
    return "\n\n".join(parts)
