"""Serializer fields stricter than DRF's defaults, so requests mean exactly what the schema says."""

from collections.abc import Mapping

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail


class StrictCharField(serializers.CharField):
    """A string, and only a string: DRF's CharField would quietly turn 0 or true into text."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON number without a fraction, and only that: DRF's IntegerField also takes "1", fullwidth
    and other Unicode digits, true and 1.0."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """true or false, and only that: DRF's BooleanField also takes "yes", "on", "1", 0 and 1."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictInput(serializers.Serializer):
    """A request body whose every key is one of its fields (`field_unknown` otherwise): DRF drops
    keys it does not know, so a misspelt field would count as left out — which, for a budget or a
    provider's endpoint, means "remove" or "reset"."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            message = (
                f"Not a field of this request; the fields are {', '.join(self.fields)}."
                if self.fields
                else "This request takes no body fields."
            )
            unknown = [str(key)[:60] for key in data if key not in self.fields]
            if unknown:
                raise serializers.ValidationError(
                    {key: [ErrorDetail(message, code="field_unknown")] for key in unknown[:20]}
                )
        return super().to_internal_value(data)


class NoInput(StrictInput):
    """The body of an operation that takes none (`request=None` in its schema)."""


def no_body(request) -> None:
    """400 `field_unknown` for any key sent to an operation that takes no body: a client's
    `{"dry_run": true}` to cancel, say, is never taken as a condition the call would respect. A
    body that is no JSON object is refused as on every other operation, falsy ones too (`null`,
    `[]`, `0`, `""`, `false`): only no body, or `{}`, is none."""
    data = request.data
    NoInput(data={} if isinstance(data, Mapping) and not data else data).is_valid(raise_exception=True)
