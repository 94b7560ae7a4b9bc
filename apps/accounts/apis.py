"""Members over the REST API. Same services as the console; views only translate."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.models import User
from apps.accounts.permissions import Permission, Role
from apps.accounts.services import (
    member_add,
    member_invite_reissue,
    member_invite_url,
    member_remove,
    member_role_change,
    workspace_with_active_members,
)
from apps.tenants.services import tenant_trace_content_set
from apps.tokens.models import Scope
from foundry.api.access import TenantAPIView
from foundry.api.created import LOCATION, created
from foundry.api.fields import StrictBooleanField, StrictCharField, StrictInput, no_body
from foundry.api.lists import ListSpec
from foundry.filtering import BooleanField, EnumField, FilterSpec, StringField, TimestampField
from foundry.filtering.ordering import OrderSpec


class MemberOutput(serializers.ModelSerializer):
    joined = serializers.BooleanField(source="has_joined", read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "role", "is_active", "joined", "date_joined"]


MEMBERS = ListSpec(
    serializer=MemberOutput,
    resource="members",
    filters=FilterSpec(
        {
            "email": StringField(),
            "full_name": StringField(),
            "role": EnumField(choices=tuple(Role.values)),
            "is_active": BooleanField(),
            "date_joined": TimestampField(),
        }
    ),
    ordering=OrderSpec(
        {"email": None, "full_name": None, "role": None, "date_joined": None, "id": None}, default="email"
    ),
)


class MemberListApi(TenantAPIView):
    access = {"GET": (Permission.MEMBERS_VIEW, Scope.READ), "POST": (Permission.MEMBERS_MANAGE, Scope.ADMIN)}

    class MemberAddInput(StrictInput):
        email = StrictCharField(max_length=320)
        full_name = StrictCharField(max_length=200, required=False, default="", allow_blank=True)
        role = serializers.ChoiceField(choices=Role.choices)

    @MEMBERS.schema("members_list")
    def get(self, request: Request) -> Response:
        return MEMBERS.respond(request, User.objects.all())

    @extend_schema(
        operation_id="members_create",
        request=MemberAddInput,
        parameters=[LOCATION],
        responses={
            201: inline_serializer("MemberAdded", {"member": MemberOutput(), "invite_url": serializers.URLField()})
        },
    )
    def post(self, request: Request) -> Response:
        data = self.MemberAddInput(data=request.data)
        data.is_valid(raise_exception=True)
        member = member_add(actor=request.user, request=request._request, **data.validated_data)
        invite_url = member_invite_url(user=member, base_url=request.build_absolute_uri("/"))
        return created({"member": MemberOutput(member).data, "invite_url": invite_url}, f"members/{member.pk}")


class MemberDetailApi(TenantAPIView):
    access = {
        "GET": (Permission.MEMBERS_VIEW, Scope.READ),
        "PATCH": (Permission.MEMBERS_MANAGE, Scope.ADMIN),
        "DELETE": (Permission.MEMBERS_MANAGE, Scope.ADMIN),
    }

    class MemberUpdateInput(StrictInput):
        role = serializers.ChoiceField(choices=Role.choices)

    @extend_schema(operation_id="members_get", responses=MemberOutput)
    def get(self, request: Request, member_id: int) -> Response:
        return Response(MemberOutput(get_object_or_404(User, pk=member_id)).data)

    @extend_schema(operation_id="members_update", request=MemberUpdateInput, responses=MemberOutput)
    def patch(self, request: Request, member_id: int) -> Response:
        member = get_object_or_404(User, pk=member_id)
        data = self.MemberUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        member = member_role_change(
            actor=request.user, member=member, role=data.validated_data["role"], request=request._request
        )
        return Response(MemberOutput(member).data)

    @extend_schema(operation_id="members_remove", responses={204: None})
    def delete(self, request: Request, member_id: int) -> Response:
        member_remove(actor=request.user, member=get_object_or_404(User, pk=member_id), request=request._request)
        return Response(status=204)


class MemberInviteApi(TenantAPIView):
    access = {"POST": (Permission.MEMBERS_MANAGE, Scope.ADMIN)}

    @extend_schema(
        operation_id="members_invite",
        request=None,
        responses=inline_serializer("MemberInvite", {"invite_url": serializers.URLField()}),
    )
    def post(self, request: Request, member_id: int) -> Response:
        member = get_object_or_404(User, pk=member_id)  # another workspace's id: 404, whatever the body
        no_body(request)
        url = member_invite_reissue(
            actor=request.user, member=member, base_url=request.build_absolute_uri("/"), request=request._request
        )
        return Response({"invite_url": url})


_WORKSPACE = inline_serializer(
    "Workspace",
    {
        "slug": serializers.CharField(),
        "name": serializers.CharField(),
        "plan": serializers.CharField(),
        "status": serializers.CharField(),
        "member_count": serializers.IntegerField(),
        "trace_content": serializers.BooleanField(
            help_text="Whether traces carry this workspace's prompts and completions (docs/observability.md)."
        ),
    },
)


class WorkspaceSettingsInput(StrictInput):
    # A JSON true or false only ("yes", 1 and "true" are refused, not guessed).
    trace_content = StrictBooleanField(help_text="Let traces carry prompts and completions of model calls.")


class WorkspaceApi(TenantAPIView):
    """The workspace this host serves: what the console dashboard shows; its settings."""

    access = {"GET": (Permission.DASHBOARD_VIEW, Scope.READ), "PATCH": (Permission.SETTINGS_MANAGE, Scope.ADMIN)}

    @extend_schema(operation_id="workspace_get", responses=_WORKSPACE)
    def get(self, request: Request) -> Response:
        return Response(self._shown(request))

    @extend_schema(operation_id="workspace_update", request=WorkspaceSettingsInput, responses=_WORKSPACE)
    def patch(self, request: Request) -> Response:
        data = WorkspaceSettingsInput(data=request.data)
        data.is_valid(raise_exception=True)
        tenant_trace_content_set(
            tenant=request._request.tenant,
            allowed=data.validated_data["trace_content"],
            actor=request.user,
            request=request._request,
        )
        return Response(self._shown(request))

    @staticmethod
    def _shown(request: Request) -> dict:
        tenant = workspace_with_active_members(request._request.tenant.pk)  # the route's copy lacks settings
        return {
            "slug": tenant.slug,
            "name": tenant.name,
            "plan": tenant.plan,
            "status": tenant.status,
            "member_count": tenant.active_members,
            "trace_content": tenant.trace_content,
        }
