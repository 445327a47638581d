"""REST API for broadcasts: list, one broadcast with its progress and results, and the audience preview."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scrm.campaigns import selectors
from scrm.customers.api import ViewCursorPagination, api_corp, get_or_404, paginated
from scrm.customers.selectors import FilterError


class BroadcastSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    chat_type = serializers.CharField(help_text="single (customers) or group")
    status = serializers.CharField()
    text = serializers.CharField()
    audience = serializers.DictField(child=serializers.JSONField())
    scheduled_at = serializers.DateTimeField(allow_null=True)
    planned = serializers.IntegerField(help_text="recipients planned when sending started")
    excluded = serializers.DictField(child=serializers.IntegerField(), help_text="reason → count")
    deletions = serializers.IntegerField(help_text="recipients who deleted their member within 72 h")
    gate_action = serializers.CharField()
    created_at = serializers.DateTimeField()


class PreviewSerializer(serializers.Serializer):
    class SenderSerializer(serializers.Serializer):
        member_id = serializers.IntegerField(source="member.pk")
        userid = serializers.CharField(source="member.userid")
        count = serializers.IntegerField()
        chunks = serializers.IntegerField(help_text="add_msg_template calls")

    total = serializers.IntegerField()
    senders = SenderSerializer(many=True)
    excluded = serializers.DictField(child=serializers.IntegerField(), help_text="reason → count")
    quota_rule = serializers.CharField()
    period = serializers.CharField()
    allowance = serializers.IntegerField()


class BroadcastListApi(APIView):
    """Broadcasts of the current corp, newest first."""

    pagination_class = ViewCursorPagination
    ordering = ("-id",)

    @extend_schema(operation_id="broadcasts_list", responses=BroadcastSerializer(many=True))
    def get(self, request: Request) -> Response:
        return paginated(
            view=self,
            request=request,
            queryset=selectors.broadcast_list(corp=api_corp(request)),
            serialize=lambda page: BroadcastSerializer(page, many=True).data,
        )


class BroadcastDetailApi(APIView):
    """One broadcast with its progress and per-recipient result counts."""

    class OutputSerializer(BroadcastSerializer):
        progress = serializers.DictField(child=serializers.IntegerField())
        results = serializers.DictField(
            child=serializers.IntegerField(),
            help_text="0 not sent, 1 sent, 2 not a friend, 3 already received another broadcast",
        )
        deletion_rate = serializers.FloatField(help_text="percent")

    @extend_schema(operation_id="broadcasts_retrieve", responses=OutputSerializer)
    def get(self, request: Request, broadcast_pk: int) -> Response:
        b = get_or_404(selectors.broadcast_get, corp=api_corp(request), pk=broadcast_pk)
        p = selectors.broadcast_progress(broadcast=b)
        data: dict[str, Any] = dict(BroadcastSerializer(b).data)
        data.update(
            progress={
                "chunks_total": p.chunks_total,
                "chunks_done": p.chunks_done,
                "recipients": p.recipients,
                "over_quota": p.over_quota,
                "percent": p.percent,
            },
            results={str(k): v for k, v in selectors.broadcast_results(broadcast=b).items()},
            deletion_rate=selectors.deletion_rate(broadcast=b),
        )
        return Response(data)


class BroadcastPreviewApi(APIView):
    """Who the broadcast would reach now: per sender, and how many are left out and why."""

    @extend_schema(operation_id="broadcasts_preview", responses=PreviewSerializer)
    def get(self, request: Request, broadcast_pk: int) -> Response:
        corp = api_corp(request)
        b = get_or_404(selectors.broadcast_get, corp=corp, pk=broadcast_pk)
        try:
            preview = selectors.audience_preview(corp=corp, audience=selectors.audience_of(b))
        except FilterError as exc:
            raise ParseError(str(exc)) from exc
        return Response(PreviewSerializer(preview).data)
