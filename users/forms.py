"""Admin and password-set forms that end a user's sessions when the password changes."""

from __future__ import annotations

from django.contrib.auth.forms import AdminPasswordChangeForm, SetPasswordForm

from users.services import user_sessions_end


class _EndSessionsOnSave:
    def save(self, commit=True):
        user = super().save(commit=commit)
        if commit:
            user_sessions_end(user_id=user.pk)
        return user


class SessionEndingSetPasswordForm(_EndSessionsOnSave, SetPasswordForm):
    """The one-time password-set link's form."""


class SessionEndingAdminPasswordChangeForm(_EndSessionsOnSave, AdminPasswordChangeForm):
    """A superuser setting someone's password in the admin."""
