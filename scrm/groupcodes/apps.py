from django.apps import AppConfig


class GroupcodesConfig(AppConfig):
    name = "scrm.groupcodes"
    label = "groupcodes"
    verbose_name = "Group codes"
