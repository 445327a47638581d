"""REST API for customers and members: one view per operation, the same filter as the dashboard list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scrm.customers import selectors
from scrm.customers.models import Customer, FollowStatus
from scrm.customers.selectors import CustomerFilter, FilterError
from scrm.groups.selectors import groups_of_customer
from scrm.tenancy.models import Corp

# -- shared by the API modules of customers, groups and the inbox ------------------------------------


class ViewCursorPagination(CursorPagination):
    """Cursor pagination ordered by the view's `ordering`: a unique, unchanging key (e.g. -id), so pages
    stay stable while rows are added and no deep OFFSET is ever run."""

    page_size_query_param = "page_size"
    max_page_size = 200

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> tuple[str, ...]:
        return tuple(view.ordering)


def api_corp(request: Request) -> Corp:
    """The caller's current corp (set by the middleware, or by IsCorpMember for token auth)."""
    corp: Corp = request._request.corp  # type: ignore[attr-defined]
    return corp


def paginated(
    *,
    view: APIView,
    request: Request,
    queryset: QuerySet[Any],
    serialize: Callable[[list[Any]], Any],
) -> Response:
    paginator = ViewCursorPagination()
    page = paginator.paginate_queryset(queryset, request, view=view) or []
    return paginator.get_paginated_response(serialize(list(page)))


# -- small nested shapes -------------------------------------------------------------------------------


@extend_schema_serializer(component_name="MemberRef")
class MemberRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    userid = serializers.CharField()
    name = serializers.CharField()


@extend_schema_serializer(component_name="TagRef")
class TagRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    tag_id = serializers.CharField(help_text="WeCom's tag id")
    name = serializers.CharField()


@extend_schema_serializer(component_name="CustomerListItem")
class CustomerRowSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="customer.pk")
    external_userid = serializers.CharField(source="customer.external_userid")
    name = serializers.CharField(source="customer.name")
    avatar = serializers.CharField(source="customer.avatar")
    type = serializers.IntegerField(source="customer.type", help_text="1 WeChat user, 2 WeCom user")
    corp_name = serializers.CharField(source="customer.corp_name")
    first_added_at = serializers.DateTimeField(source="customer.first_added_at", allow_null=True)
    active_follows = serializers.IntegerField(source="customer.active_follows")
    members = MemberRefSerializer(many=True, help_text="members who follow the customer now")
    tags = TagRefSerializer(many=True, help_text="union of the tags of its live follows")


def _rows(corp: Corp) -> Callable[[list[Customer]], Any]:
    def serialize(page: list[Customer]) -> Any:
        return CustomerRowSerializer(selectors.customer_rows(corp=corp, customers=page), many=True).data

    return serialize


def _ids(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        OpenApiTypes.INT,
        many=True,
        explode=True,
        description=description + " (repeat or comma-separate)",
    )


FILTER_PARAMETERS = [
    OpenApiParameter("q", OpenApiTypes.STR, description="name or any member's remark contains"),
    _ids("tags_all", "has every one of these tag ids (AND)"),
    _ids("tags_any", "has at least one of these tag ids (OR)"),
    _ids("tags_none", "has none of these tag ids (NOT)"),
    _ids("members", "followed now by any of these member ids"),
    OpenApiParameter("added_from", OpenApiTypes.DATE, description="first added on or after (Asia/Shanghai)"),
    OpenApiParameter("added_to", OpenApiTypes.DATE, description="first added on or before (Asia/Shanghai)"),
    OpenApiParameter(
        "status",
        OpenApiTypes.STR,
        enum=sorted({"all", *selectors.STATUSES}),
        description="active (default): a live follow; lost: none left; all; or has a follow with that status",
    ),
]


# -- views ---------------------------------------------------------------------------------------------


class CustomerListApi(APIView):
    """Customers (one per person, however many members follow them) matching the dashboard's filter.

    Newest first by id, so cursor pages stay stable while customers are added; the list page's `order`
    parameter does not apply here."""

    pagination_class = ViewCursorPagination
    ordering = ("-id",)

    @extend_schema(
        operation_id="customers_list",
        parameters=FILTER_PARAMETERS,
        responses=CustomerRowSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        corp = api_corp(request)
        try:
            filters = CustomerFilter.from_params(request.query_params)
        except FilterError as exc:
            raise ParseError(str(exc)) from exc
        return paginated(
            view=self,
            request=request,
            queryset=selectors.customer_list(corp=corp, filters=filters),
            serialize=_rows(corp),
        )


class CustomerDuplicatesApi(APIView):
    """Customers followed by more than one member right now (the de-duplication report)."""

    pagination_class = ViewCursorPagination
    ordering = ("-id",)

    @extend_schema(operation_id="customers_duplicates_list", responses=CustomerRowSerializer(many=True))
    def get(self, request: Request) -> Response:
        corp = api_corp(request)
        return paginated(
            view=self,
            request=request,
            queryset=selectors.customer_duplicates(corp=corp),
            serialize=_rows(corp),
        )


@extend_schema_serializer(component_name="TimelineEntry")
class TimelineEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    kind = serializers.CharField()
    # `label` and `data` shadow attributes of DRF's Field / Serializer in the stubs only: the metaclass
    # takes declared fields off the class, so they are plain output fields at run time.
    label = serializers.SerializerMethodField()  # type: ignore[assignment]
    at = serializers.DateTimeField()
    member = MemberRefSerializer(allow_null=True)
    data = serializers.DictField(child=serializers.JSONField())  # type: ignore[assignment]

    def get_label(self, obj: Any) -> str:
        return selectors.timeline_label(obj.kind)


@extend_schema_serializer(component_name="CustomerFollow")
class FollowDetailSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="follow.pk")
    member = MemberRefSerializer(source="follow.member")
    remark = serializers.CharField(source="follow.remark")
    description = serializers.CharField(source="follow.description")
    state = serializers.CharField(source="follow.state", help_text="the channel code's state")
    added_at = serializers.DateTimeField(source="follow.added_at", allow_null=True)
    status = serializers.ChoiceField(source="follow.status", choices=FollowStatus.choices)
    status_changed_at = serializers.DateTimeField(source="follow.status_changed_at", allow_null=True)
    tags = TagRefSerializer(many=True)


@extend_schema_serializer(component_name="CustomerGroupMembership")
class GroupMembershipSerializer(serializers.Serializer):
    group_id = serializers.IntegerField(source="group.pk")
    chat_id = serializers.CharField(source="group.chat_id")
    name = serializers.CharField(source="group.name")
    is_active = serializers.BooleanField()
    join_time = serializers.DateTimeField(allow_null=True)
    left_at = serializers.DateTimeField(allow_null=True)


def get_or_404(getter: Callable[..., Model], **kwargs: Any) -> Any:
    """Runs a corp-scoped `<entity>_get` selector; another corp's object is simply not found."""
    try:
        return getter(**kwargs)
    except ObjectDoesNotExist as exc:
        raise NotFound from exc


class CustomerDetailApi(APIView):
    """One customer: profile, every follow with its tags, its groups, and the newest timeline entries."""

    TIMELINE_LIMIT = 50

    @extend_schema_serializer(component_name="CustomerDetail")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(source="customer.pk")
        external_userid = serializers.CharField(source="customer.external_userid")
        name = serializers.CharField(source="customer.name")
        avatar = serializers.CharField(source="customer.avatar")
        type = serializers.IntegerField(source="customer.type", help_text="1 WeChat user, 2 WeCom user")
        gender = serializers.IntegerField(source="customer.gender", help_text="0 unknown, 1 male, 2 female")
        corp_name = serializers.CharField(source="customer.corp_name")
        corp_full_name = serializers.CharField(source="customer.corp_full_name")
        unionid = serializers.CharField(source="customer.unionid")
        first_added_at = serializers.DateTimeField(source="customer.first_added_at", allow_null=True)
        active_follows = serializers.IntegerField(source="customer.active_follows")
        follows = FollowDetailSerializer(many=True, help_text="live follows first")
        groups = GroupMembershipSerializer(many=True, help_text="customer groups it is or was in")
        timeline = TimelineEntrySerializer(
            many=True, help_text="the newest entries; all of them at …/timeline/"
        )

    @extend_schema(operation_id="customers_retrieve", responses=OutputSerializer)
    def get(self, request: Request, customer_pk: int) -> Response:
        corp = api_corp(request)
        customer = get_or_404(selectors.customer_get, corp=corp, pk=customer_pk)
        detail = {
            "customer": customer,
            "follows": selectors.customer_follows(corp=corp, customer=customer),
            "groups": groups_of_customer(corp=corp, customer=customer),
            "timeline": selectors.customer_timeline(corp=corp, customer=customer)[: self.TIMELINE_LIMIT],
        }
        return Response(self.OutputSerializer(detail).data)


class CustomerTimelineApi(APIView):
    """Every timeline entry of one customer, newest first."""

    pagination_class = ViewCursorPagination
    ordering = ("-at", "-id")

    @extend_schema(operation_id="customers_timeline_list", responses=TimelineEntrySerializer(many=True))
    def get(self, request: Request, customer_pk: int) -> Response:
        corp = api_corp(request)
        customer = get_or_404(selectors.customer_get, corp=corp, pk=customer_pk)
        return paginated(
            view=self,
            request=request,
            queryset=selectors.customer_timeline(corp=corp, customer=customer),
            serialize=lambda page: TimelineEntrySerializer(page, many=True).data,
        )


class MemberListApi(APIView):
    """Members with how many customers each follows right now."""

    pagination_class = ViewCursorPagination
    ordering = ("userid",)

    @extend_schema_serializer(component_name="MemberListItem")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(source="pk")
        userid = serializers.CharField()
        name = serializers.CharField()
        status = serializers.CharField()
        has_contact_permission = serializers.BooleanField()
        live_customers = serializers.IntegerField()

    @extend_schema(operation_id="members_list", responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        corp = api_corp(request)
        return paginated(
            view=self,
            request=request,
            queryset=selectors.member_list(corp=corp),
            serialize=lambda page: self.OutputSerializer(page, many=True).data,
        )
