from django.apps import AppConfig


class SpecimensConfig(AppConfig):
    """A test-only app with one table of every filterable type (public schema)."""

    name = "tests.specimens"
    label = "specimens"
    default_auto_field = "django.db.models.BigAutoField"
