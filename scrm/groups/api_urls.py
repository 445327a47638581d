from django.urls import path

from scrm.groups import api

urlpatterns = [
    path("groups/", api.GroupListApi.as_view(), name="group-list"),
    path("groups/<int:group_pk>/", api.GroupDetailApi.as_view(), name="group-detail"),
]
