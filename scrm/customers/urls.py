from django.urls import path

from scrm.customers import views

app_name = "customers"

urlpatterns = [
    path("customers/", views.customer_list, name="list"),
    path("customers/export.csv", views.customer_export, name="export"),
    path("customers/duplicates/", views.customer_duplicates, name="duplicates"),
    path("customers/members/", views.member_list, name="members"),
    path("customers/<int:customer_pk>/", views.customer_detail, name="detail"),
]
