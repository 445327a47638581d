from django.urls import path

from scrm.groups import views

app_name = "groups"

urlpatterns = [
    path("groups/", views.group_list, name="list"),
    path("groups/stats/", views.group_stats, name="stats"),
    path("groups/<int:group_pk>/", views.group_detail, name="detail"),
]
