"""Sign in with a username or an email address, case-insensitively."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend

from users.models import User
from users.selectors import user_find_by_login


class UsernameOrEmailBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        login = username if username is not None else kwargs.get(User.USERNAME_FIELD)
        if not login or password is None:
            return None
        user = user_find_by_login(login)
        if user is None:
            # Hash anyway so response time does not reveal which logins exist.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
