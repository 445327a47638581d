"""REST API for group codes: the list, and one code with its pool and joins / leaves per day."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scrm.customers.api import ViewCursorPagination, api_corp, get_or_404, paginated
from scrm.groupcodes import selectors
from scrm.groupcodes.models import GroupCode, PoolGroup


@extend_schema_serializer(component_name="GroupCodeListItem")
class GroupCodeSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    mode = serializers.ChoiceField(choices=GroupCode.Mode.choices)
    state = serializers.CharField()
    capacity = serializers.IntegerField()
    config_id = serializers.CharField()
    applied_chat_ids = serializers.ListField(child=serializers.CharField())
    auto_create_room = serializers.BooleanField(source="applied_auto_create")
    rotations = serializers.IntegerField()
    exhausted_at = serializers.DateTimeField(allow_null=True)
    alert = serializers.CharField()
    created_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="GroupCodePoolGroup")
class PoolSerializer(serializers.Serializer):
    group_id = serializers.IntegerField(source="entry.group_id")
    chat_id = serializers.CharField(source="entry.group.chat_id")
    name = serializers.CharField(source="entry.group.name")
    status = serializers.ChoiceField(source="entry.status", choices=PoolGroup.Status.choices)
    member_count = serializers.IntegerField(source="entry.group.member_count")
    joins = serializers.IntegerField()
    leaves = serializers.IntegerField()
    joined_by_code = serializers.IntegerField(source="attributed")
    qr_expires_at = serializers.DateTimeField(source="entry.qr_expires_at", allow_null=True)


@extend_schema_serializer(component_name="GroupCodeDayStat")
class DaySerializer(serializers.Serializer):
    day = serializers.DateField()
    joins = serializers.IntegerField()
    leaves = serializers.IntegerField()
    size = serializers.IntegerField(
        allow_null=True, help_text="members at the end of the day; null: no change"
    )


class GroupCodeListApi(APIView):
    """Active group codes, newest first."""

    pagination_class = ViewCursorPagination
    ordering = ("-id",)

    @extend_schema(operation_id="group_codes_list", responses=GroupCodeSerializer(many=True))
    def get(self, request: Request) -> Response:
        return paginated(
            view=self,
            request=request,
            queryset=selectors.code_list(corp=api_corp(request)),
            serialize=lambda page: GroupCodeSerializer(page, many=True).data,
        )


class GroupCodeDetailApi(APIView):
    """One group code: its pool (with member counts) and joins / leaves of the last 30 days."""

    DAYS = 30

    @extend_schema_serializer(component_name="GroupCodeDetail")
    class OutputSerializer(GroupCodeSerializer):
        pool = serializers.SerializerMethodField()
        daily = serializers.SerializerMethodField()

        @extend_schema_field(PoolSerializer(many=True))
        def get_pool(self, obj: GroupCode) -> Any:
            return PoolSerializer(self.context["stats"].groups, many=True).data

        @extend_schema_field(DaySerializer(many=True))
        def get_daily(self, obj: GroupCode) -> Any:
            return DaySerializer(self.context["stats"].days, many=True).data

    @extend_schema(operation_id="group_codes_retrieve", responses=OutputSerializer)
    def get(self, request: Request, gcode_pk: int) -> Response:
        corp = api_corp(request)
        code = get_or_404(selectors.code_get, corp=corp, pk=gcode_pk)
        stats = selectors.code_stats(corp=corp, code=code, days=self.DAYS)
        return Response(self.OutputSerializer(code, context={"stats": stats}).data)
