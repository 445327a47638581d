from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "scrm.campaigns"
    label = "campaigns"
    verbose_name = "Broadcasts"
