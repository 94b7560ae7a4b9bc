"""What a review test watches: the events an action added to a chain."""

from tests.conftest import audit_events

WATCHED = ("acme", "public")


class Watch:
    """The chains just before an action; `.new(schema)` the events it added."""

    def __init__(self, *schemas: str):
        self.schemas = schemas or WATCHED
        self.before = {schema: len(audit_events(schema)) for schema in self.schemas}

    def new(self, schema: str = "acme") -> list:
        return audit_events(schema)[self.before[schema] :]

    def all_new(self) -> dict[str, list]:
        return {schema: self.new(schema) for schema in self.schemas}


def describe(events) -> list[tuple]:
    return [(e.action, e.actor_id, e.outcome, e.target_type, e.target_id) for e in events]
