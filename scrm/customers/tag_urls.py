from django.urls import URLPattern

app_name = "tags"

urlpatterns: list[URLPattern] = []
