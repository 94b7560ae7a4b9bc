"""Yes/no settings read from the environment, one way everywhere: settings.py, and gunicorn's
config file, which loads no Django.

django-environ's env.bool reads any value it does not know as False, so a mistyped
FOUNDRY_SECURE_COOKIES=enabled would silently mean off: refused instead. Empty is unset (as
compose passes a variable it was not given), not off."""

import os

TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def switch(name: str, default: bool) -> bool:
    """The yes/no setting `name`; ValueError naming it for a value that is neither."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    if value.strip().lower() in TRUE:
        return True
    if value.strip().lower() in FALSE:
        return False
    raise ValueError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), not {value[:40]!r}.")
