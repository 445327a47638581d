from django.urls import path

from scrm.callbacks import inbox_views

app_name = "callbacks"

urlpatterns = [
    path("events/", inbox_views.inbox, name="inbox"),
    path("events/<int:event_pk>/replay/", inbox_views.inbox_event_replay, name="replay"),
]
