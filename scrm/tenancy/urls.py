from django.urls import path

from scrm.tenancy import views

app_name = "tenancy"

urlpatterns = [
    path("corps/switch/", views.corp_switch, name="corp_switch"),
    path("corps/new/", views.onboarding, name="onboarding"),
    path("corps/new/sandbox/", views.onboarding_sandbox, name="onboarding_sandbox"),
    path("settings/corp/", views.corp_settings, name="corp_settings"),
    path("settings/corp/edit/", views.corp_edit, name="corp_edit"),
    path("settings/corp/test-connection/", views.corp_test_connection, name="corp_test_connection"),
    path("settings/team/", views.team, name="team"),
    path("settings/team/<int:membership_pk>/remove/", views.team_remove, name="team_remove"),
]
