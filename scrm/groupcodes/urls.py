from django.urls import path

from scrm.groupcodes import views

app_name = "groupcodes"

urlpatterns = [
    path("group-codes/", views.code_list, name="list"),
    path("group-codes/new/", views.code_create, name="create"),
    path("group-codes/<int:gcode_pk>/", views.code_detail, name="detail"),
    path("group-codes/<int:gcode_pk>/qr.png", views.code_qr, name="qr"),
    path("group-codes/<int:gcode_pk>/pool/", views.pool_add, name="pool_add"),
    path("group-codes/<int:gcode_pk>/pool/<int:entry_pk>/remove/", views.pool_remove, name="pool_remove"),
    path("group-codes/<int:gcode_pk>/pool/<int:entry_pk>/qr", views.entry_image, name="entry_image"),
    path("group-codes/<int:gcode_pk>/duplicates/", views.code_duplicates, name="duplicates"),
    path("group-codes/<int:gcode_pk>/delete/", views.code_delete, name="delete"),
    path("group-welcome-templates/", views.template_list, name="templates"),
    path("group-welcome-templates/new/", views.template_create, name="template_create"),
    path("group-welcome-templates/<int:template_pk>/", views.template_edit, name="template_edit"),
    path("group-welcome-templates/<int:template_pk>/delete/", views.template_delete, name="template_delete"),
    # Public: the landing page of an uploaded-QR group code (an unguessable slug).
    path("g/<str:slug>/", views.landing, name="landing"),
    path("g/<str:slug>/<int:entry_pk>.img", views.landing_image, name="landing_image"),
]
