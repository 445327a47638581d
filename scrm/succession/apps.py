from django.apps import AppConfig


class SuccessionConfig(AppConfig):
    name = "scrm.succession"
    label = "succession"
    verbose_name = "Succession"
