from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.accounts import PasswordResetForm
from core.converters import OpaqueIdConverter
from trial import views as trial_views
from trial.api import TokenView

# Before the includes below: their public-id routes use it.
register_converter(OpaqueIdConverter, "opaque_id")

urlpatterns = [
    path("", trial_views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Password reset for everyone, and the set-password link of an invitation (core/accounts.py)
    path("accounts/password-reset/", auth_views.PasswordResetView.as_view(form_class=PasswordResetForm),
         name="password_reset"),
    path("accounts/password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("accounts/reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("admin/", admin.site.urls),
    path("trials/", include("trial.urls")),
    path("trials/", include("enrolment.urls")),  # the coordinator's case page
    path("imports/", include("imaging.urls")),
    path("reading/images/", include("imaging.image_urls")),
    path("reading/", include("reading.urls")),
    path("rating/", include("rating.urls")),
    path("arena/", include("rating.arena_urls")),  # the standalone arena (issue 20 item 1)
    path("inference/", include("inference.urls")),
    path("analysis/", include("analysis.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/token/", TokenView.as_view(), name="api-token"),
    path("api/", include("config.api_urls")),
]
