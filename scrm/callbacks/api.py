"""REST API for the event inbox: list what WeCom sent and how applying it went; admins replay an event."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scrm.callbacks.apply import inbox_replay
from scrm.callbacks.inbox_views import KNOWN_KINDS, inbox_list
from scrm.callbacks.models import InboxEvent, InboxStatus
from scrm.customers.api import ViewCursorPagination, api_corp, paginated
from scrm.tenancy.models import Role


class InboxListApi(APIView):
    """Stored callbacks, newest first, with their status, attempts and last error."""

    pagination_class = ViewCursorPagination
    ordering = ("-id",)

    @extend_schema_serializer(component_name="InboxEvent")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(source="pk")
        kind = serializers.CharField()
        lane = serializers.CharField()
        status = serializers.ChoiceField(choices=InboxStatus.choices)
        attempts = serializers.IntegerField()
        deliveries = serializers.IntegerField(help_text="how many times WeCom delivered it")
        last_error = serializers.CharField()
        event_time = serializers.IntegerField(help_text="CreateTime, seconds since the epoch")
        received_at = serializers.DateTimeField()
        processed_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(
        operation_id="inbox_list",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=InboxStatus.values),
            OpenApiParameter("kind", OpenApiTypes.STR, enum=KNOWN_KINDS),
        ],
        responses=OutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        status_ = request.query_params.get("status", "")
        kind = request.query_params.get("kind", "")
        # An unknown value is a caller's mistake: say so rather than answer an unfiltered or empty list.
        if status_ and status_ not in InboxStatus.values:
            raise ParseError("status must be one of " + ", ".join(InboxStatus.values))
        if kind and kind not in KNOWN_KINDS:
            raise ParseError("kind is not a known event kind")
        queryset = inbox_list(corp=api_corp(request), status=status_, kind=kind).defer("payload")
        return paginated(
            view=self,
            request=request,
            queryset=queryset,
            serialize=lambda page: self.OutputSerializer(page, many=True).data,
        )


class InboxReplayApi(APIView):
    """Applies a stored event again (admins). Applying is idempotent, so a replay never doubles anything."""

    write_role = Role.ADMIN

    @extend_schema_serializer(component_name="InboxReplay")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.CharField()

    @extend_schema(operation_id="inbox_replay", request=None, responses={202: OutputSerializer})
    def post(self, request: Request, event_pk: int) -> Response:
        corp = api_corp(request)
        try:
            inbox_replay(corp=corp, event_id=event_pk)
        except InboxEvent.DoesNotExist as exc:
            raise NotFound from exc
        row = InboxEvent.objects.only("pk", "status").get(corp=corp, pk=event_pk)
        return Response(
            self.OutputSerializer({"id": row.pk, "status": row.status}).data, status=status.HTTP_202_ACCEPTED
        )
