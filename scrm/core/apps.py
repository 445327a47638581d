from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "scrm.core"
    label = "core"
