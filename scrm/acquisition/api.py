"""REST API for channel codes: list, one code with its members and routing, and its daily statistics."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scrm.acquisition import selectors
from scrm.customers.api import ViewCursorPagination, api_corp, get_or_404, paginated


class CodeListApi(APIView):
    """Active channel codes of the current corp, newest first."""

    pagination_class = ViewCursorPagination
    ordering = ("-created_at", "-id")

    @extend_schema_serializer(component_name="ChannelCodeListItem")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        state = serializers.CharField(help_text="the contact way's state, echoed in add events")
        config_id = serializers.CharField()
        qr_code = serializers.CharField(help_text="WeCom's QR image URL")
        routing = serializers.CharField(help_text="primary, backup or paused")
        applied_userids = serializers.ListField(child=serializers.CharField())
        per_minute_cap = serializers.IntegerField()
        per_day_cap = serializers.IntegerField()
        alert = serializers.CharField()
        add_count = serializers.IntegerField()
        created_at = serializers.DateTimeField()

    @extend_schema(operation_id="channel_codes_list", responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return paginated(
            view=self,
            request=request,
            queryset=selectors.code_list(corp=api_corp(request)),
            serialize=lambda page: self.OutputSerializer(page, many=True).data,
        )


class CodeDetailApi(APIView):
    """One channel code with its members (schedules, backups, usage against the caps)."""

    class SeatSerializer(serializers.Serializer):
        userid = serializers.CharField(source="seat.member.userid")
        name = serializers.CharField(source="seat.member.name")
        backup = serializers.BooleanField(source="seat.backup")
        weekdays = serializers.ListField(child=serializers.IntegerField(), source="seat.weekdays")
        start_time = serializers.TimeField(source="seat.start_time", allow_null=True)
        end_time = serializers.TimeField(source="seat.end_time", allow_null=True)
        routed = serializers.BooleanField(help_text="on the code in WeCom right now")
        added_this_minute = serializers.IntegerField(source="usage.minute")
        added_today = serializers.IntegerField(source="usage.day")

    @extend_schema_serializer(component_name="ChannelCodeDetail")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(source="code.pk")
        name = serializers.CharField(source="code.name")
        state = serializers.CharField(source="code.state")
        config_id = serializers.CharField(source="code.config_id")
        qr_code = serializers.CharField(source="code.qr_code")
        skip_verify = serializers.BooleanField(source="code.skip_verify")
        remark_template = serializers.CharField(source="code.remark_template")
        script_id = serializers.IntegerField(source="code.script_id", allow_null=True)
        tag_ids = serializers.ListField(child=serializers.CharField(), help_text="WeCom tag ids")
        per_minute_cap = serializers.IntegerField(source="code.per_minute_cap")
        per_day_cap = serializers.IntegerField(source="code.per_day_cap")
        routing = serializers.CharField(source="code.routing")
        alert = serializers.CharField(source="code.alert")
        members = serializers.ListField(child=serializers.DictField())

    @extend_schema(operation_id="channel_codes_retrieve", responses=OutputSerializer)
    def get(self, request: Request, code_pk: int) -> Response:
        corp = api_corp(request)
        code = get_or_404(selectors.code_get, corp=corp, pk=code_pk)
        seats = selectors.code_seats(corp=corp, code=code)
        usage = selectors.code_usage(corp=corp, code=code, seats=seats)
        members: list[Any] = [
            self.SeatSerializer(
                {
                    "seat": s,
                    "usage": usage[s.member.userid],
                    "routed": s.member.userid in code.applied_userids,
                }
            ).data
            for s in seats
        ]
        data = {"code": code, "tag_ids": [t.tag_id for t in code.tags.all()], "members": members}
        return Response(self.OutputSerializer(data).data)


class CodeStatsApi(APIView):
    """A code's last 30 days (Asia/Shanghai): adds, deletions by the customer, retention, welcomes."""

    class DaySerializer(serializers.Serializer):
        day = serializers.DateField()
        adds = serializers.IntegerField()
        deleted_by_customer = serializers.IntegerField()
        retained_7d = serializers.FloatField(allow_null=True)
        retained_30d = serializers.FloatField(allow_null=True)
        welcome = serializers.DictField(child=serializers.IntegerField(), help_text="attempts by status")

    class MemberSerializer(serializers.Serializer):
        userid = serializers.CharField()
        name = serializers.CharField()
        adds = serializers.IntegerField()
        over_cap = serializers.IntegerField()

    @extend_schema_serializer(component_name="ChannelCodeStats")
    class OutputSerializer(serializers.Serializer):
        days = serializers.ListField(child=serializers.DictField())
        members = serializers.ListField(child=serializers.DictField())
        total_adds = serializers.IntegerField()
        total_deleted = serializers.IntegerField()
        welcome_totals = serializers.DictField(child=serializers.IntegerField())
        latency_p50 = serializers.IntegerField(allow_null=True, help_text="ms, sent welcomes")
        latency_p95 = serializers.IntegerField(allow_null=True)
        over_cap = serializers.IntegerField()

    @extend_schema(operation_id="channel_codes_stats", responses=OutputSerializer)
    def get(self, request: Request, code_pk: int) -> Response:
        corp = api_corp(request)
        code = get_or_404(selectors.code_get, corp=corp, pk=code_pk)
        stats = selectors.code_stats(corp=corp, code=code)
        data = {
            **stats.__dict__,
            "days": [self.DaySerializer(d).data for d in stats.days],
            "members": [self.MemberSerializer(m).data for m in stats.members],
        }
        return Response(self.OutputSerializer(data).data)
