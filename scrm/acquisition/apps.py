from django.apps import AppConfig


class AcquisitionConfig(AppConfig):
    name = "scrm.acquisition"
    label = "acquisition"
    verbose_name = "Channel codes and welcome messages"
