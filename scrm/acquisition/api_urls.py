from django.urls import path

from scrm.acquisition import api

urlpatterns = [
    path("channel-codes/", api.CodeListApi.as_view(), name="channel-code-list"),
    path("channel-codes/<int:code_pk>/", api.CodeDetailApi.as_view(), name="channel-code-detail"),
    path("channel-codes/<int:code_pk>/stats/", api.CodeStatsApi.as_view(), name="channel-code-stats"),
]
