"""Password rules of our own, beside Django's (settings.AUTH_PASSWORD_VALIDATORS)."""

from django.core.exceptions import ValidationError


class TextPasswordValidator:
    """A password is text: a lone surrogate (a byte of a non-UTF-8 shell, reaching a command's
    argv through Python's surrogateescape) cannot be hashed, which ended `create_tenant
    --owner-password` or `create_operator --password` in a UnicodeEncodeError."""

    def validate(self, password: str, user=None) -> None:
        if any("\ud800" <= char <= "\udfff" for char in password):
            raise ValidationError(
                "The password holds a byte that is not UTF-8 text; type it in a UTF-8 terminal.",
                code="password_not_text",
            )

    def get_help_text(self) -> str:
        return "Your password must be UTF-8 text."
