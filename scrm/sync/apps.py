from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "scrm.sync"
    label = "sync"
