"""REST API for corp tags and bulk tagging. Tag writes go to WeCom first (admins only); bulk jobs are
queued for the bulk lane (operators and up)."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scrm.core.wecom import wecom_lang
from scrm.customers import tag_services as services
from scrm.customers.api import ViewCursorPagination, api_corp, paginated
from scrm.customers.models import BulkTagJob, Member, Tag, TagGroup
from scrm.customers.selectors import FilterError
from scrm.customers.tag_services import NAME_MAX, ORDER_MAX, TagChangeRefused
from scrm.tenancy.models import Corp, Role
from wecom.errors import TransientError, WeComError


def refused(exc: TagChangeRefused | FilterError) -> Response:
    message = exc.message if isinstance(exc, TagChangeRefused) else str(exc)
    return Response({"detail": message}, status=status.HTTP_400_BAD_REQUEST)


def wecom_failed(exc: WeComError) -> Response:
    """WeCom said no (502) or is busy / rate-limited (503, with Retry-After when known)."""
    body = {"detail": exc.message(wecom_lang()), "errcode": exc.errcode}
    if isinstance(exc, TransientError):
        response = Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        if exc.retry_after is not None:
            response["Retry-After"] = str(max(1, round(exc.retry_after)))
        return response
    return Response(body, status=status.HTTP_502_BAD_GATEWAY)


def _live_tags(corp: Corp) -> Any:
    return (
        Tag.objects.filter(corp=corp, deleted=False)
        .select_related("group")
        .order_by("-group__order", "-order")
    )


@extend_schema_serializer(component_name="CorpTag")
class TagOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    tag_id = serializers.CharField(help_text="WeCom's tag id")
    name = serializers.CharField()
    order = serializers.IntegerField(help_text="WeCom shows a larger order first")
    group = serializers.IntegerField(source="group_id")
    group_name = serializers.CharField(source="group.name")
    created_by_us = serializers.BooleanField(help_text="WeCom lets this app change only tags it created")


@extend_schema_serializer(component_name="CorpTagGroup")
class GroupOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    group_id = serializers.CharField(help_text="WeCom's group id")
    name = serializers.CharField()
    order = serializers.IntegerField()
    created_by_us = serializers.BooleanField()
    tags = serializers.SerializerMethodField()

    def get_tags(self, group: TagGroup) -> list[dict[str, Any]]:
        live = [t for t in group.tags.all() if not t.deleted]
        return [{"id": t.pk, "tag_id": t.tag_id, "name": t.name, "order": t.order} for t in live]


class TagListApi(APIView):
    """GET: the corp's live tags. POST (admins): a new tag in one of our groups, created in WeCom."""

    write_role = Role.ADMIN
    # Cursor pages like every list of the API; each tag carries its order for display.
    pagination_class = ViewCursorPagination
    ordering = ("id",)

    @extend_schema_serializer(component_name="TagCreateInput")
    class InputSerializer(serializers.Serializer):
        group = serializers.IntegerField(help_text="The tag group's id (ours)")
        name = serializers.CharField(max_length=NAME_MAX)
        order = serializers.IntegerField(min_value=0, max_value=ORDER_MAX, default=0)

    @extend_schema(responses=TagOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return paginated(
            view=self,
            request=request,
            queryset=_live_tags(api_corp(request)),
            serialize=lambda page: TagOutputSerializer(page, many=True).data,
        )

    @extend_schema(request=InputSerializer, responses={201: TagOutputSerializer})
    def post(self, request: Request) -> Response:
        corp = api_corp(request)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        group = get_object_or_404(TagGroup, corp=corp, pk=data.validated_data["group"], deleted=False)
        try:
            tags = services.tag_create(
                corp=corp,
                group=group,
                names=[data.validated_data["name"]],
                order=data.validated_data["order"],
            )
        except TagChangeRefused as exc:
            return refused(exc)
        except WeComError as exc:
            return wecom_failed(exc)
        return Response(TagOutputSerializer(tags[0]).data, status=status.HTTP_201_CREATED)


class TagDetailApi(APIView):
    """GET one tag; PATCH (admins) renames and/or reorders it; DELETE (admins) deletes it, in WeCom first."""

    write_role = Role.ADMIN

    @extend_schema_serializer(component_name="TagUpdateInput")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=NAME_MAX, required=False)
        order = serializers.IntegerField(min_value=0, max_value=ORDER_MAX, required=False)

    def _tag(self, request: Request, tag_pk: int) -> Tag:
        return get_object_or_404(_live_tags(api_corp(request)), pk=tag_pk)

    @extend_schema(responses=TagOutputSerializer)
    def get(self, request: Request, tag_pk: int) -> Response:
        return Response(TagOutputSerializer(self._tag(request, tag_pk)).data)

    @extend_schema(request=InputSerializer, responses=TagOutputSerializer)
    def patch(self, request: Request, tag_pk: int) -> Response:
        tag = self._tag(request, tag_pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            tag = services.tag_edit(corp=api_corp(request), tag=tag, **data.validated_data)
        except TagChangeRefused as exc:
            return refused(exc)
        except WeComError as exc:
            return wecom_failed(exc)
        return Response(TagOutputSerializer(tag).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, tag_pk: int) -> Response:
        tag = self._tag(request, tag_pk)
        try:
            services.tag_delete(corp=api_corp(request), tag=tag)
        except TagChangeRefused as exc:
            return refused(exc)
        except WeComError as exc:
            return wecom_failed(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _groups(corp: Corp) -> Any:
    return (
        TagGroup.objects.filter(corp=corp, deleted=False).prefetch_related("tags").order_by("-order", "name")
    )


class TagGroupListApi(APIView):
    """GET: the corp's tag groups with their tags. POST (admins): a new group with its first tags."""

    write_role = Role.ADMIN
    pagination_class = ViewCursorPagination
    ordering = ("id",)

    @extend_schema_serializer(component_name="TagGroupCreateInput")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=NAME_MAX)
        order = serializers.IntegerField(min_value=0, max_value=ORDER_MAX, default=0)
        tags = serializers.ListField(
            child=serializers.CharField(max_length=NAME_MAX),
            min_length=1,
            help_text="Names of its first tags",
        )

    @extend_schema(responses=GroupOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return paginated(
            view=self,
            request=request,
            queryset=_groups(api_corp(request)),
            serialize=lambda page: GroupOutputSerializer(page, many=True).data,
        )

    @extend_schema(request=InputSerializer, responses={201: GroupOutputSerializer})
    def post(self, request: Request) -> Response:
        corp = api_corp(request)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            group = services.tag_group_create(
                corp=corp,
                name=data.validated_data["name"],
                tag_names=data.validated_data["tags"],
                order=data.validated_data["order"],
            )
        except TagChangeRefused as exc:
            return refused(exc)
        except WeComError as exc:
            return wecom_failed(exc)
        return Response(
            GroupOutputSerializer(_groups(corp).get(pk=group.pk)).data, status=status.HTTP_201_CREATED
        )


class TagGroupDetailApi(APIView):
    """GET one group; PATCH (admins) renames and/or reorders it; DELETE (admins) deletes it and its tags."""

    write_role = Role.ADMIN

    @extend_schema_serializer(component_name="TagGroupUpdateInput")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=NAME_MAX, required=False)
        order = serializers.IntegerField(min_value=0, max_value=ORDER_MAX, required=False)

    def _group(self, request: Request, tag_group_pk: int) -> TagGroup:
        return get_object_or_404(_groups(api_corp(request)), pk=tag_group_pk)

    @extend_schema(responses=GroupOutputSerializer)
    def get(self, request: Request, tag_group_pk: int) -> Response:
        return Response(GroupOutputSerializer(self._group(request, tag_group_pk)).data)

    @extend_schema(request=InputSerializer, responses=GroupOutputSerializer)
    def patch(self, request: Request, tag_group_pk: int) -> Response:
        corp = api_corp(request)
        group = self._group(request, tag_group_pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.tag_group_edit(corp=corp, group=group, **data.validated_data)
        except TagChangeRefused as exc:
            return refused(exc)
        except WeComError as exc:
            return wecom_failed(exc)
        return Response(GroupOutputSerializer(_groups(corp).get(pk=group.pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, tag_group_pk: int) -> Response:
        group = self._group(request, tag_group_pk)
        try:
            services.tag_group_delete(corp=api_corp(request), group=group)
        except TagChangeRefused as exc:
            return refused(exc)
        except WeComError as exc:
            return wecom_failed(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_serializer(component_name="BulkTagJob")
class JobOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    status = serializers.CharField()
    filters = serializers.DictField(
        source="filter_params", child=serializers.ListField(child=serializers.CharField())
    )
    member = serializers.IntegerField(source="member_id", allow_null=True)
    add = serializers.ListField(source="add_tag_ids", child=serializers.IntegerField())
    remove = serializers.ListField(source="remove_tag_ids", child=serializers.IntegerField())
    total = serializers.IntegerField(
        allow_null=True, help_text="Follows to mark; counted when the job starts"
    )
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    failures = serializers.SerializerMethodField(help_text="Failed follows by errcode, in plain language")
    stop_reason = serializers.CharField(help_text="Why the job stopped early: an errcode or a local key")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_failures(self, job: BulkTagJob) -> list[dict[str, Any]]:
        return [
            {"errcode": e.errcode, "key": e.key, "count": e.count, "message": e.message}
            for e in services.bulk_job_errors(job=job, lang=wecom_lang())
        ]


class TagJobListApi(APIView):
    """GET: the corp's recent bulk tagging jobs. POST (operators): mark / unmark tags on every live follow
    of the customers a customer-list filter selects; answers the queued job."""

    write_role = Role.OPERATOR
    pagination_class = ViewCursorPagination
    ordering = ("-id",)

    @extend_schema_serializer(component_name="BulkTagJobCreateInput")
    class InputSerializer(serializers.Serializer):
        filters = serializers.DictField(
            required=False,
            default=dict,
            help_text="The customer list's filter: q, tags_all, tags_any, tags_none, members, added_from, "
            "added_to, status (as GET /api/v1/customers/ takes them)",
        )
        add = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
        remove = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
        member = serializers.IntegerField(
            required=False, allow_null=True, help_text="Only this member's follows"
        )

    @extend_schema(responses=JobOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return paginated(
            view=self,
            request=request,
            queryset=BulkTagJob.objects.filter(corp=api_corp(request)).select_related("created_by"),
            serialize=lambda page: JobOutputSerializer(page, many=True).data,
        )

    @extend_schema(request=InputSerializer, responses={201: JobOutputSerializer})
    def post(self, request: Request) -> Response:
        corp = api_corp(request)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        wanted = {*data.validated_data["add"], *data.validated_data["remove"]}
        tags = Tag.objects.filter(corp=corp, pk__in=wanted).in_bulk()
        if len(tags) != len(wanted):
            return Response({"detail": "unknown tag id"}, status=status.HTTP_400_BAD_REQUEST)
        member = None
        if data.validated_data.get("member") is not None:
            member = get_object_or_404(Member, corp=corp, pk=data.validated_data["member"])
        try:
            job = services.tag_bulk_job_create(
                corp=corp,
                user=request.user,
                filter_params=data.validated_data["filters"],
                add=[tags[pk] for pk in data.validated_data["add"]],
                remove=[tags[pk] for pk in data.validated_data["remove"]],
                member=member,
            )
        except (TagChangeRefused, FilterError) as exc:
            return refused(exc)
        return Response(JobOutputSerializer(job).data, status=status.HTTP_201_CREATED)


class TagJobDetailApi(APIView):
    """GET: a bulk tagging job's progress."""

    @extend_schema(responses=JobOutputSerializer)
    def get(self, request: Request, job_pk: int) -> Response:
        job = get_object_or_404(BulkTagJob, corp=api_corp(request), pk=job_pk)
        return Response(JobOutputSerializer(job).data)
