from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "scrm.groups"
    label = "groups"
