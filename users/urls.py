from django.urls import path

from users import views

urlpatterns = [
    path("users/register", views.RegisterView.as_view(), name="user-register"),
    path("users/me", views.MeView.as_view(), name="user-me"),
    path("users/me/care-team", views.CareTeamView.as_view(), name="care-team"),
    path(
        "users/me/care-team/<int:membership_id>", views.CareTeamMemberView.as_view(), name="care-team-member"
    ),
    path("users/me/patients", views.PatientListView.as_view(), name="patients"),
    path("users/username/<str:username>", views.UserByUsernameView.as_view(), name="user-by-username"),
    path("users/<int:user_id>", views.UserDetailView.as_view(), name="user-detail"),
    path("users", views.UserListView.as_view(), name="user-list"),
    path("auth/token", views.TokenObtainView.as_view(), name="auth-token"),
    path("auth/token/refresh", views.TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/password", views.PasswordChangeView.as_view(), name="auth-password"),
]
