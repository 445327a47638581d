from django.urls import path

from scrm.acquisition import views

app_name = "acquisition"

urlpatterns = [
    path("channel-codes/", views.code_list, name="codes"),
    path("channel-codes/new/", views.code_create, name="code_create"),
    path("channel-codes/<int:code_pk>/", views.code_detail, name="code_detail"),
    path("channel-codes/<int:code_pk>/edit/", views.code_edit, name="code_edit"),
    path("channel-codes/<int:code_pk>/delete/", views.code_delete, name="code_delete"),
    path("channel-codes/<int:code_pk>/qr.png", views.code_qr, {"fmt": "png"}, name="code_qr_png"),
    path("channel-codes/<int:code_pk>/qr.svg", views.code_qr, {"fmt": "svg"}, name="code_qr_svg"),
    path("welcome-scripts/", views.script_list, name="scripts"),
    path("welcome-scripts/new/", views.script_create, name="script_create"),
    path("welcome-scripts/<int:script_pk>/", views.script_edit, name="script_edit"),
    path("welcome-scripts/<int:script_pk>/preview/", views.script_preview, name="script_preview"),
    path("welcome-scripts/<int:script_pk>/delete/", views.script_delete, name="script_delete"),
    path("welcome-scripts/<int:script_pk>/variants/", views.variant_add, name="variant_add"),
    path(
        "welcome-scripts/<int:script_pk>/variants/<int:variant_pk>/delete/",
        views.variant_delete,
        name="variant_delete",
    ),
    path("welcome-scripts/<int:script_pk>/attachments/", views.attachment_add, name="attachment_add"),
    path(
        "welcome-scripts/<int:script_pk>/attachments/<int:attachment_pk>/delete/",
        views.attachment_delete,
        name="attachment_delete",
    ),
]
