from django.urls import path

from scrm.campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("broadcasts/", views.broadcast_list, name="list"),
    path("broadcasts/new/", views.broadcast_create, name="create"),
    path("broadcasts/settings/", views.campaign_settings, name="settings"),
    path("broadcasts/resume/", views.churn_resume, name="resume"),
    path("broadcasts/<int:broadcast_pk>/", views.broadcast_detail, name="detail"),
    path("broadcasts/<int:broadcast_pk>/edit/", views.broadcast_edit, name="edit"),
    path("broadcasts/<int:broadcast_pk>/attachments/", views.attachment_add, name="attachment_add"),
    path(
        "broadcasts/<int:broadcast_pk>/attachments/<int:battachment_pk>/delete/",
        views.attachment_delete,
        name="attachment_delete",
    ),
    path("broadcasts/<int:broadcast_pk>/submit/", views.broadcast_submit, name="submit"),
    path("broadcasts/<int:broadcast_pk>/approve/", views.broadcast_approve, name="approve"),
    path("broadcasts/<int:broadcast_pk>/reject/", views.broadcast_reject, name="reject"),
    path("broadcasts/<int:broadcast_pk>/cancel/", views.broadcast_cancel, name="cancel"),
    path("broadcasts/<int:broadcast_pk>/remind/", views.broadcast_remind, name="remind"),
]
