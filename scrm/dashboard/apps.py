from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "scrm.dashboard"
    label = "dashboard"
