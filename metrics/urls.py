from django.urls import path

from metrics import views

urlpatterns = [
    path("health-metrics", views.MetricCreateView.as_view(), name="metric-create"),
    path("health-metrics/bulk", views.MetricBulkView.as_view(), name="metric-bulk"),
    path("health-metrics/summary", views.MetricSummaryView.as_view(), name="metric-summary"),
    path("health-metrics/user/<int:user_id>", views.MetricUserListView.as_view(), name="metric-user-list"),
    path("health-metrics/<int:metric_id>", views.MetricDetailView.as_view(), name="metric-detail"),
]
