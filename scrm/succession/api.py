"""REST API for succession: handovers with their progress, and one handover's items."""

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
from scrm.succession import selectors
from scrm.succession.models import Handover, HandoverItem, ItemStatus
from scrm.tenancy.models import Role


@extend_schema_serializer(component_name="HandoverCounts")
class CountsSerializer(serializers.Serializer):
    customers = serializers.DictField(child=serializers.IntegerField(), help_text="status -> items")
    groups = serializers.DictField(child=serializers.IntegerField(), help_text="status -> items")
    total = serializers.IntegerField()
    open = serializers.IntegerField()
    done = serializers.IntegerField()


@extend_schema_serializer(component_name="Handover")
class HandoverSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    kind = serializers.ChoiceField(choices=Handover.Kind.choices)
    member_userid = serializers.CharField(source="member.userid")
    member_name = serializers.CharField(source="member.name")
    rule = serializers.ChoiceField(choices=Handover.Rule.choices)
    candidate_ids = serializers.ListField(child=serializers.IntegerField())
    status = serializers.ChoiceField(choices=Handover.Status.choices)
    stop_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    counts = serializers.SerializerMethodField()

    @extend_schema_field(CountsSerializer)
    def get_counts(self, obj: Handover) -> Any:
        return CountsSerializer(self.context["progress"][obj.pk]).data


class HandoverListApi(APIView):
    """Handovers (leavers' and on-job), newest first. Admins only."""

    required_role = Role.ADMIN
    pagination_class = ViewCursorPagination
    ordering = ("-id",)

    @extend_schema(operation_id="succession_handovers_list", responses=HandoverSerializer(many=True))
    def get(self, request: Request) -> Response:
        corp = api_corp(request)

        def serialize(page: list[Handover]) -> Any:
            progress = selectors.handovers_progress(corp=corp, handovers=page)
            return HandoverSerializer(page, many=True, context={"progress": progress}).data

        return paginated(
            view=self, request=request, queryset=selectors.handover_list(corp=corp), serialize=serialize
        )


@extend_schema_serializer(component_name="HandoverItem")
class ItemSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    target = serializers.ChoiceField(choices=HandoverItem.Target.choices)
    wecom_id = serializers.CharField(help_text="external_userid or chat_id")
    customer_id = serializers.IntegerField(allow_null=True)
    group_id = serializers.IntegerField(allow_null=True)
    takeover_userid = serializers.CharField(source="takeover.userid")
    status = serializers.ChoiceField(choices=ItemStatus.choices)
    errcode = serializers.IntegerField(allow_null=True)
    note = serializers.CharField()
    not_before = serializers.DateField(allow_null=True)
    requested_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class HandoverDetailApi(APIView):
    """One handover with its counts per status."""

    required_role = Role.ADMIN

    @extend_schema(operation_id="succession_handovers_retrieve", responses=HandoverSerializer)
    def get(self, request: Request, handover_pk: int) -> Response:
        corp = api_corp(request)
        handover = get_or_404(selectors.handover_get, corp=corp, pk=handover_pk)
        progress = {handover.pk: selectors.handover_progress(corp=corp, handover=handover)}
        return Response(HandoverSerializer(handover, context={"progress": progress}).data)


def _choice(request: Request, name: str, values: list[str]) -> str | None:
    value = request.query_params.get(name) or None
    if value is not None and value not in values:
        raise ParseError(f"{name} must be one of " + ", ".join(values))
    return value


class HandoverItemListApi(APIView):
    """One handover's items (customers and groups), cursor-paginated, filtered by status and target."""

    required_role = Role.ADMIN
    pagination_class = ViewCursorPagination
    ordering = ("id",)

    @extend_schema(
        operation_id="succession_handover_items_list",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=ItemStatus.values),
            OpenApiParameter("target", OpenApiTypes.STR, enum=HandoverItem.Target.values),
        ],
        responses=ItemSerializer(many=True),
    )
    def get(self, request: Request, handover_pk: int) -> Response:
        corp = api_corp(request)
        handover = get_or_404(selectors.handover_get, corp=corp, pk=handover_pk)
        items = selectors.handover_items(
            corp=corp,
            handover=handover,
            status=_choice(request, "status", list(ItemStatus.values)),
            target=_choice(request, "target", list(HandoverItem.Target.values)),
        )
        return paginated(
            view=self,
            request=request,
            queryset=items,
            serialize=lambda page: ItemSerializer(page, many=True).data,
        )
