from django.urls import path

from scrm.customers import api

urlpatterns = [
    path("customers/", api.CustomerListApi.as_view(), name="customer-list"),
    path("customers/duplicates/", api.CustomerDuplicatesApi.as_view(), name="customer-duplicates"),
    path("customers/<int:customer_pk>/", api.CustomerDetailApi.as_view(), name="customer-detail"),
    path(
        "customers/<int:customer_pk>/timeline/", api.CustomerTimelineApi.as_view(), name="customer-timeline"
    ),
    path("members/", api.MemberListApi.as_view(), name="member-list"),
]
