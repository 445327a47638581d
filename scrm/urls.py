from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.i18n import set_language
from drf_spectacular.views import SpectacularAPIView

from scrm.callbacks.views import wecom_callback
from scrm.core import views as core_views
from scrm.tenancy.login import ThrottledLoginView
from scrm.tenancy.permissions import public_view, user_view

# Django's own admin keeps its own staff-only login.
admin.site.site_header = "SCRM admin"

auth_patterns = [
    path(
        "login/",
        public_view(ThrottledLoginView.as_view(redirect_authenticated_user=True)),
        name="login",
    ),
    path("logout/", public_view(auth_views.LogoutView.as_view()), name="logout"),
    path("password/", user_view(auth_views.PasswordChangeView.as_view()), name="password_change"),
    path(
        "password/done/", user_view(auth_views.PasswordChangeDoneView.as_view()), name="password_change_done"
    ),
]

urlpatterns = [
    # First: the callback path is the hottest, and Django tries patterns in order.
    path("wecom/callback/<str:corp_id>/", wecom_callback, name="wecom_callback"),
    path("", include("scrm.dashboard.urls")),
    path("", include("scrm.tenancy.urls")),
    path("", include("scrm.customers.urls")),
    path("", include("scrm.customers.tag_urls")),
    path("", include("scrm.groups.urls")),
    path("", include("scrm.callbacks.urls")),
    path("", include("scrm.sync.urls")),
    path("", include("scrm.acquisition.urls")),
    path("", include("scrm.compliance.urls")),
    path("", include("scrm.campaigns.urls")),
    path("", include("scrm.groupcodes.urls")),
    path("", include("scrm.succession.urls")),
    path("accounts/", include(auth_patterns)),
    path("i18n/setlang/", public_view(set_language), name="set_language"),
    path("healthz", core_views.healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/", include("scrm.core.api_urls")),
    path("admin/", admin.site.urls),
]
