"""Bearer-token authentication without a database query per request.

simplejwt checks the signature, expiry and token type; the user comes from the cached
authentication snapshot (``users.selectors``), which also carries what ends a token
early: deactivation, the token epoch (bumped by a password change) and signed-out
sessions. Each of those takes effect on the very next request.
"""

from __future__ import annotations

from rest_framework_simplejwt.authentication import JWTAuthentication as SimpleJWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken

from users.selectors import user_auth_snapshot, user_from_snapshot

SESSION_CLAIM = "sid"
EPOCH_CLAIM = "epoch"


class JWTAuthentication(SimpleJWTAuthentication):
    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            user, _ = result
            context = getattr(getattr(request, "_request", request), "log_context", None)
            if context is not None:
                context.user_id = user.pk
        return result

    def get_user(self, validated_token):
        try:
            user_id = int(validated_token["user_id"])
        except (KeyError, TypeError, ValueError):
            raise InvalidToken("Token contained no recognizable user identification") from None
        snapshot = user_auth_snapshot(user_id=user_id)
        if snapshot is None or not snapshot["is_active"]:
            raise AuthenticationFailed("User is inactive or deleted.", code="user_inactive")
        if validated_token.get(EPOCH_CLAIM) != snapshot["auth_epoch"]:
            raise AuthenticationFailed("Token has been revoked.", code="token_revoked")
        if validated_token.get(SESSION_CLAIM) in snapshot["revoked_sessions"]:
            raise AuthenticationFailed("Token has been revoked.", code="token_revoked")
        return user_from_snapshot(snapshot)
