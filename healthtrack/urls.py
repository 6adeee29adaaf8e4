from django.contrib import admin
from django.contrib.auth.views import PasswordResetCompleteView, PasswordResetConfirmView
from django.urls import include, path, re_path, reverse_lazy
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from goals import urls as goals_urls
from healthtrack import errors
from healthtrack.health import HealthView
from insights import urls as insights_urls
from interop import urls as interop_urls
from metrics import urls as metrics_urls
from nutrition import urls as nutrition_urls
from users import urls as users_urls
from users.forms import SessionEndingSetPasswordForm

admin.site.site_header = "HealthTrack console"
admin.site.site_title = "HealthTrack console"
admin.site.index_title = "Patients, data and accounts"

# One flat list rather than an include() per app: an app's include() that does not match
# raises Resolver404 and copies its patterns into the "tried" list on every request for a
# later app. The order (and so which pattern wins) is the same.
api_v1 = [
    *users_urls.urlpatterns,
    *metrics_urls.urlpatterns,
    *nutrition_urls.urlpatterns,
    *goals_urls.urlpatterns,
    *insights_urls.urlpatterns,
    *interop_urls.urlpatterns,
]

urlpatterns = [
    path("health", HealthView.as_view(), name="health"),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("redoc", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/v1/", include(api_v1)),
    # One-time password-set links (create_clinician, support's "password link" action).
    path(
        "admin/password-set/<uidb64>/<token>/",
        PasswordResetConfirmView.as_view(
            form_class=SessionEndingSetPasswordForm, success_url=reverse_lazy("password_set_complete")
        ),
        name="password_set_confirm",
    ),
    path("admin/password-set/done/", PasswordResetCompleteView.as_view(), name="password_set_complete"),
    path("admin/", admin.site.urls),
    # Anything else under the API answers a JSON 404, also when DEBUG is on.
    re_path(r"^api(?:/[\s\S]*)?$", errors.api_not_found),  # [\s\S]: paths may hold newlines
]

handler400 = "healthtrack.errors.bad_request"
handler403 = "healthtrack.errors.permission_denied"
handler404 = "healthtrack.errors.page_not_found"
handler500 = "healthtrack.errors.server_error"
