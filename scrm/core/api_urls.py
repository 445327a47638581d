"""REST API v1: every endpoint acts on the caller's current corp."""

from django.urls import include, path

from scrm.core.api_views import MeApi

app_name = "api"

urlpatterns = [
    path("me/", MeApi.as_view(), name="me"),
    path("", include("scrm.customers.api_urls")),
    path("", include("scrm.customers.tag_api_urls")),
    path("", include("scrm.groups.api_urls")),
    path("", include("scrm.callbacks.api_urls")),
    path("", include("scrm.sync.api_urls")),
    path("", include("scrm.acquisition.api_urls")),
    path("", include("scrm.campaigns.api_urls")),
    path("", include("scrm.groupcodes.api_urls")),
    path("", include("scrm.succession.api_urls")),
]
