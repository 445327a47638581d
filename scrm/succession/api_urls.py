from django.urls import path

from scrm.succession import api

urlpatterns = [
    path("succession/handovers/", api.HandoverListApi.as_view(), name="handover-list"),
    path("succession/handovers/<int:handover_pk>/", api.HandoverDetailApi.as_view(), name="handover-detail"),
    path(
        "succession/handovers/<int:handover_pk>/items/",
        api.HandoverItemListApi.as_view(),
        name="handover-item-list",
    ),
]
