from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "scrm.customers"
    label = "customers"
