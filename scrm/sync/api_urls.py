from django.urls import path

from scrm.sync.apis import SyncStartApi, SyncStatusApi

urlpatterns = [
    path("sync/", SyncStatusApi.as_view(), name="sync-status"),
    path("sync/start/", SyncStartApi.as_view(), name="sync-start"),
]
