"""REST API v1: every endpoint acts on the caller's current corp."""

from django.urls import path

from scrm.core.api_views import MeApi

app_name = "api"

urlpatterns = [
    path("me/", MeApi.as_view(), name="me"),
]
