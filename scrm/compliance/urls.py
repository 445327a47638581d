from django.urls import URLPattern, path

from scrm.compliance import views

app_name = "compliance"

urlpatterns: list[URLPattern] = [
    path("compliance/words/", views.words, name="words"),
    path("compliance/words/add/", views.word_add, name="word_add"),
    path("compliance/words/<int:word_pk>/delete/", views.word_delete, name="word_delete"),
    path("compliance/policy/", views.policy_set, name="policy"),
    path("compliance/try/", views.try_text, name="try"),
]
