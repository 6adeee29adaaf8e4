from django.urls import path

from nutrition import views

urlpatterns = [
    path("nutrition-logs", views.NutritionLogCreateView.as_view(), name="nutrition-log-create"),
    path("nutrition-logs/summary", views.NutritionSummaryView.as_view(), name="nutrition-summary"),
    path(
        "nutrition-logs/user/<int:user_id>",
        views.NutritionLogUserListView.as_view(),
        name="nutrition-log-user-list",
    ),
    path("nutrition-logs/<int:log_id>", views.NutritionLogDetailView.as_view(), name="nutrition-log-detail"),
]
