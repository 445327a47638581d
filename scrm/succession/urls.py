from django.urls import path

from scrm.succession import views

app_name = "succession"

urlpatterns = [
    path("succession/", views.succession_list, name="list"),
    path("succession/unassigned/refresh/", views.unassigned_refresh, name="unassigned_refresh"),
    path("succession/onjob/", views.onjob_start, name="onjob_start"),
    path("succession/new/resigned/", views.handover_new, {"kind": "resigned"}, name="new_resigned"),
    path("succession/new/onjob/", views.handover_new, {"kind": "onjob"}, name="new_onjob"),
    path("succession/<int:handover_pk>/", views.handover_detail, name="detail"),
    path("succession/<int:handover_pk>/cancel/", views.handover_cancel, name="cancel"),
    path("succession/<int:handover_pk>/resume/", views.handover_resume, name="resume"),
    path("succession/duplicates/", views.duplicates, name="duplicates"),
    path("succession/duplicates/<int:customer_pk>/decide/", views.dedup_decide, name="decide"),
]
