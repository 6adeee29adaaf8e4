from django.urls import path

from insights import views

urlpatterns = [
    path("recommendations/<int:user_id>", views.RecommendationsView.as_view(), name="recommendations"),
    path("health-insights", views.HealthInsightCreateView.as_view(), name="insight-create"),
    path("health-insights/user/<int:user_id>", views.UserInsightListView.as_view(), name="insight-user-list"),
    path("health-insights/<int:insight_id>", views.HealthInsightDetailView.as_view(), name="insight-detail"),
]
