from django.urls import path

from scrm.groupcodes import api

urlpatterns = [
    path("group-codes/", api.GroupCodeListApi.as_view(), name="group-code-list"),
    path("group-codes/<int:gcode_pk>/", api.GroupCodeDetailApi.as_view(), name="group-code-detail"),
]
