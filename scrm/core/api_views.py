from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class MeApi(APIView):
    """Who is calling, in which corp, with which role."""

    @extend_schema_serializer(component_name="Me")
    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        corp_id = serializers.CharField()
        corp_name = serializers.CharField()
        role = serializers.CharField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        membership = request._request.membership  # type: ignore[attr-defined]
        data = {
            "username": request.user.get_username(),
            "corp_id": membership.corp.corp_id,
            "corp_name": membership.corp.name,
            "role": membership.role,
        }
        return Response(self.OutputSerializer(data).data)
