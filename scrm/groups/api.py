"""REST API for customer groups: the list, and one group with its members and joins / leaves per day."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scrm.customers.api import ViewCursorPagination, api_corp, get_or_404, paginated
from scrm.groups import selectors
from scrm.groups.models import CustomerGroup, GroupMember


@extend_schema_serializer(component_name="GroupListItem")
class GroupSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    chat_id = serializers.CharField()
    name = serializers.CharField()
    owner_userid = serializers.CharField()
    member_count = serializers.IntegerField()
    status = serializers.ChoiceField(choices=CustomerGroup.Status.choices)
    created_at_wecom = serializers.DateTimeField(allow_null=True)
    dismissed_at = serializers.DateTimeField(allow_null=True)


class GroupListApi(APIView):
    """Customer groups, newest first."""

    pagination_class = ViewCursorPagination
    ordering = ("-id",)

    @extend_schema(
        operation_id="groups_list",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=sorted(selectors.STATUSES)),
            OpenApiParameter("q", OpenApiTypes.STR, description="name contains, or exact chat_id / owner"),
        ],
        responses=GroupSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        status = request.query_params.get("status", "all")
        if status not in selectors.STATUSES:
            raise ParseError("status must be one of " + ", ".join(sorted(selectors.STATUSES)))
        q = request.query_params.get("q", "").strip()[:100]
        return paginated(
            view=self,
            request=request,
            queryset=selectors.group_list(corp=api_corp(request), status=status, q=q),
            serialize=lambda page: GroupSerializer(page, many=True).data,
        )


@extend_schema_serializer(component_name="GroupMember")
class GroupMemberSerializer(serializers.Serializer):
    userid = serializers.CharField(source="membership.userid", help_text="member userid or external_userid")
    type = serializers.ChoiceField(source="membership.type", choices=GroupMember.Type.choices)
    name = serializers.CharField(source="membership.name")
    group_nickname = serializers.CharField(source="membership.group_nickname")
    customer_id = serializers.IntegerField(source="customer.pk", allow_null=True, default=None)
    join_time = serializers.DateTimeField(source="membership.join_time", allow_null=True)
    join_scene = serializers.IntegerField(source="membership.join_scene", allow_null=True)
    invitor_userid = serializers.CharField(source="membership.invitor_userid")
    state = serializers.CharField(source="membership.state")
    is_active = serializers.BooleanField(source="membership.is_active")
    left_at = serializers.DateTimeField(source="membership.left_at", allow_null=True)


@extend_schema_serializer(component_name="GroupDayStat")
class GroupDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    joins = serializers.IntegerField()
    leaves = serializers.IntegerField()
    size_at_end = serializers.IntegerField(allow_null=True, help_text="null: no change that day")


class GroupDetailApi(APIView):
    """One group: its members (present first, then those who left) and joins / leaves of the last 30 days."""

    DAYS = 30

    @extend_schema_serializer(component_name="GroupDetail")
    class OutputSerializer(GroupSerializer):
        notice = serializers.CharField()
        admin_userids = serializers.ListField(child=serializers.CharField())
        members = serializers.SerializerMethodField()
        daily = serializers.SerializerMethodField()

        @extend_schema_field(GroupMemberSerializer(many=True))
        def get_members(self, obj: CustomerGroup) -> Any:
            return GroupMemberSerializer(self.context["members"], many=True).data

        @extend_schema_field(GroupDaySerializer(many=True))
        def get_daily(self, obj: CustomerGroup) -> Any:
            return GroupDaySerializer(self.context["daily"], many=True).data

    @extend_schema(operation_id="groups_retrieve", responses=OutputSerializer)
    def get(self, request: Request, group_pk: int) -> Response:
        corp = api_corp(request)
        group = get_or_404(selectors.group_get, corp=corp, pk=group_pk)
        context = {
            "members": selectors.group_members(corp=corp, group=group),
            "daily": selectors.group_daily_stats(corp=corp, group=group, days=self.DAYS),
        }
        return Response(self.OutputSerializer(group, context=context).data)
