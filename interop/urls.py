from django.urls import path

from interop import views

urlpatterns = [
    path("users/me/export", views.PersonalExportView.as_view(), name="user-me-export"),
    path("users/<int:user_id>/export/fhir", views.FhirExportView.as_view(), name="user-export-fhir"),
    path("health-metrics/import/fhir", views.FhirImportView.as_view(), name="metric-import-fhir"),
    path(
        "health-metrics/import/apple-health",
        views.AppleHealthImportView.as_view(),
        name="metric-import-apple-health",
    ),
]
