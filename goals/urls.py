from django.urls import path

from goals import views

urlpatterns = [
    path("health-goals", views.HealthGoalCreateView.as_view(), name="health-goal-create"),
    path(
        "health-goals/user/<int:user_id>",
        views.HealthGoalUserListView.as_view(),
        name="health-goal-user-list",
    ),
    path("health-goals/<int:goal_id>", views.HealthGoalDetailView.as_view(), name="health-goal-detail"),
]
