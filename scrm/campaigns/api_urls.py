from django.urls import path

from scrm.campaigns import api

urlpatterns = [
    path("broadcasts/", api.BroadcastListApi.as_view(), name="broadcast-list"),
    path("broadcasts/<int:broadcast_pk>/", api.BroadcastDetailApi.as_view(), name="broadcast-detail"),
    path(
        "broadcasts/<int:broadcast_pk>/preview/", api.BroadcastPreviewApi.as_view(), name="broadcast-preview"
    ),
]
