from django.urls import path

from scrm.sync import views

app_name = "sync"

urlpatterns = [
    path("sync/", views.sync_history, name="history"),
    path("sync/start/", views.sync_start, name="start"),
    path("sync/progress/", views.sync_progress, name="progress"),
]
