from django.urls import path

from scrm.callbacks import api

urlpatterns = [
    path("inbox/", api.InboxListApi.as_view(), name="inbox-list"),
    path("inbox/<int:event_pk>/replay/", api.InboxReplayApi.as_view(), name="inbox-replay"),
]
