"""Base of every API view: it must declare its access rules, or it cannot be defined."""

from django.core.exceptions import ImproperlyConfigured
from rest_framework.views import APIView

from apps.accounts.permissions import Permission
from apps.tokens.models import Scope
from foundry.api.permissions import TenantAccess


class TenantAPIView(APIView):
    """Base of every /api/v1/ view. Subclasses declare `access = {METHOD: (Permission, Scope)}`."""

    permission_classes = [TenantAccess]
    access: dict[str, tuple[Permission, Scope]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        handlers = {m.upper() for m in cls.http_method_names if hasattr(cls, m) and m not in ("options", "head")}
        missing = handlers - set(cls.access)
        if missing:
            raise ImproperlyConfigured(f"{cls.__name__} declares no access rule for {sorted(missing)}")
