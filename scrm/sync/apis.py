"""REST API for the full sync: where it is, and starting one (admins)."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scrm.core.wecom import wecom_lang
from scrm.sync.models import SyncRun
from scrm.sync.selectors import SyncProgress, sync_progress_get, sync_run_error, sync_run_percent
from scrm.sync.services import full_sync_start
from scrm.tenancy.models import Role


@extend_schema_serializer(component_name="SyncRun")
class SyncRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=SyncRun.Status.choices)
    phase = serializers.ChoiceField(choices=SyncRun.Phase.choices)
    trigger = serializers.ChoiceField(choices=SyncRun.Trigger.choices)
    percent = serializers.IntegerField(min_value=0, max_value=100)
    members_seen = serializers.IntegerField()
    members_total = serializers.IntegerField()
    customers_seen = serializers.IntegerField()
    follows_seen = serializers.IntegerField()
    follows_estimate = serializers.IntegerField(help_text="active follows held before the run (0 at first)")
    groups_seen = serializers.IntegerField()
    groups_skipped = serializers.IntegerField()
    groups_total = serializers.IntegerField()
    follows_lost = serializers.IntegerField()
    groups_dismissed = serializers.IntegerField()
    error_code = serializers.IntegerField(allow_null=True, help_text="WeCom errcode")
    error = serializers.CharField(allow_blank=True, help_text="plain-language reason")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


def _run_data(run: SyncRun, lang: str) -> dict[str, Any]:
    names: list[str] = [
        name for name in SyncRunSerializer._declared_fields if name not in ("percent", "error")
    ]
    data = {name: getattr(run, name) for name in names}
    data.update(percent=sync_run_percent(run=run), error=sync_run_error(run=run, lang=lang))
    return data


class SyncStatusApi(APIView):
    """The corp's sync in progress, else its latest one (`run` is null before the first sync)."""

    required_role = Role.VIEWER

    @extend_schema_serializer(component_name="SyncStatusOutput")
    class OutputSerializer(serializers.Serializer):
        run = SyncRunSerializer(allow_null=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        lang = wecom_lang()
        progress: SyncProgress | None = sync_progress_get(corp=request._request.corp, lang=lang)  # type: ignore[attr-defined]
        data = {"run": _run_data(progress.run, lang) if progress else None}
        return Response(self.OutputSerializer(data).data)


class SyncStartApi(APIView):
    """Starts a full sync (201), or answers with the one already running (200)."""

    write_role = Role.ADMIN

    @extend_schema_serializer(component_name="SyncStartOutput")
    class OutputSerializer(serializers.Serializer):
        created = serializers.BooleanField()
        run = SyncRunSerializer()

    @extend_schema(request=None, responses={200: OutputSerializer, 201: OutputSerializer})
    def post(self, request: Request) -> Response:
        run, created = full_sync_start(
            corp=request._request.corp,  # type: ignore[attr-defined]
            trigger=SyncRun.Trigger.MANUAL,
            user=cast(User, request.user),
        )
        data = {"created": created, "run": _run_data(run, wecom_lang())}
        return Response(
            self.OutputSerializer(data).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
