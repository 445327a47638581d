from django.apps import AppConfig


class CallbacksConfig(AppConfig):
    name = "scrm.callbacks"
    label = "callbacks"
