from django.urls import path

from scrm.customers import tag_api as api

urlpatterns = [
    path("tags/", api.TagListApi.as_view(), name="tag-list"),
    path("tags/<int:tag_pk>/", api.TagDetailApi.as_view(), name="tag-detail"),
    path("tag-groups/", api.TagGroupListApi.as_view(), name="tag-group-list"),
    path("tag-groups/<int:tag_group_pk>/", api.TagGroupDetailApi.as_view(), name="tag-group-detail"),
    path("tag-jobs/", api.TagJobListApi.as_view(), name="tag-job-list"),
    path("tag-jobs/<int:job_pk>/", api.TagJobDetailApi.as_view(), name="tag-job-detail"),
]
