from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "scrm.compliance"
    label = "compliance"
    verbose_name = "Sensitive-word gate"
