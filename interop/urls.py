from django.urls import path

from interop import views

urlpatterns = [
    path("users/me/export", views.PersonalExportView.as_view(), name="user-me-export"),
    path("users/<int:user_id>/export/fhir", views.FhirExportView.as_view(), name="user-export-fhir"),
]
