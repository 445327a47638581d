from django.urls import path

from scrm.customers import tag_views as views

app_name = "tags"

urlpatterns = [
    path("tags/", views.tag_list, name="list"),
    path("tags/sync/", views.tags_sync, name="sync"),
    path("tags/groups/new/", views.group_create, name="group_create"),
    path("tags/groups/<int:tag_group_pk>/rename/", views.group_edit, name="group_edit"),
    path("tags/groups/<int:tag_group_pk>/move/", views.group_move, name="group_move"),
    path("tags/groups/<int:tag_group_pk>/delete/", views.group_delete, name="group_delete"),
    path("tags/groups/<int:tag_group_pk>/tags/new/", views.tag_create, name="tag_create"),
    path("tags/<int:tag_pk>/rename/", views.tag_edit, name="tag_edit"),
    path("tags/<int:tag_pk>/move/", views.tag_move, name="tag_move"),
    path("tags/<int:tag_pk>/delete/", views.tag_delete, name="tag_delete"),
    path("tags/follow/<int:follow_pk>/", views.follow_tags, name="follow"),
    path("tags/bulk/", views.bulk, name="bulk"),
    path("tags/jobs/<int:job_pk>/", views.job_detail, name="job"),
    path("tags/jobs/<int:job_pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("tags/jobs/<int:job_pk>/resume/", views.job_resume, name="job_resume"),
]
