"""Bearer-token authentication without a database query per request.

simplejwt checks the signature, expiry and token type; the user comes from the cached
authentication snapshot (``users.selectors``), which also carries what ends a token
early: deactivation, the token epoch (bumped by a password change) and signed-out
sessions. Each of those takes effect on the very next request.

A token is decoded once per request (``validated_access_token``): the rate limiter,
which runs first, and authentication share the result. Decoding is the expensive part
of a cached request (PyJWT checks every character of the token), and a client sends the
same token for its whole lifetime, so each process also remembers the last few thousand
tokens whose signature it has checked: a token seen before costs a dictionary lookup
and an expiry check. Only tokens that passed every check are remembered, and expiry is
checked again on every use; what revokes a token early lives in the snapshot, read on
every request.
"""

from __future__ import annotations

import time

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from rest_framework_simplejwt.authentication import JWTAuthentication as SimpleJWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

from users.selectors import user_auth_snapshot, user_from_snapshot

SESSION_CLAIM = "sid"
EPOCH_CLAIM = "epoch"
_MEMO = "_healthtrack_access_token"


def bearer_token(request: HttpRequest) -> str | None:
    """The raw token of an ``Authorization: Bearer <token>`` header, if there is one."""
    parts = request.META.get(api_settings.AUTH_HEADER_NAME, "").split()
    if len(parts) != 2 or parts[0] not in api_settings.AUTH_HEADER_TYPES:
        return None
    return parts[1]


# Tokens this process has verified, by their raw text. Bounded: emptied when full,
# which costs the next few requests one decode each.
VERIFIED_TOKENS_MAX = 2048
_verified_tokens: dict[str, AccessToken] = {}


@receiver(setting_changed)
def _forget_verified_tokens(*, setting, **kwargs) -> None:
    # A new signing key must not accept tokens checked against the old one (tests).
    if setting in ("SIMPLE_JWT", "JWT_SIGNING_KEY"):
        _verified_tokens.clear()


def _access_token(raw_token: str) -> AccessToken:
    """The verified token; TokenError if it is not valid now."""
    token = _verified_tokens.get(raw_token)
    if token is not None:
        expires = token.payload.get("exp")
        if isinstance(expires, int | float) and expires > time.time():
            return token
        # Expired (or about to be): the full check gives simplejwt's own error.
        _verified_tokens.pop(raw_token, None)
    token = AccessToken(raw_token)
    if len(_verified_tokens) >= VERIFIED_TOKENS_MAX:
        _verified_tokens.clear()
    _verified_tokens[raw_token] = token
    return token


def validated_access_token(request: HttpRequest, raw_token: str) -> AccessToken:
    """``raw_token`` checked (signature, expiry, type) once per request; InvalidToken if not."""
    memo = getattr(request, _MEMO, None)
    if memo is None or memo[0] != raw_token:
        try:
            memo = (raw_token, _access_token(raw_token), None)
        except TokenError as error:
            memo = (raw_token, None, error)
        setattr(request, _MEMO, memo)
    _, token, error = memo
    if error is not None:
        raise InvalidToken({"detail": str(error), "code": "token_not_valid"}) from None
    return token


# Cache values read ahead for this request (healthtrack.ratelimit fetches the caller's
# snapshot keys in the round trip that counts the request).
PREFETCHED_CACHE_VALUES = "_healthtrack_prefetched_cache"


class JWTAuthentication(SimpleJWTAuthentication):
    _prefetched: dict | None = None

    def __init__(self, *args, **kwargs) -> None:
        # simplejwt looks the user model up on every request; get_user below never uses it.
        pass

    def authenticate(self, request):
        http_request = getattr(request, "_request", request)
        raw_token = bearer_token(http_request)
        if raw_token is None:
            return None
        token = validated_access_token(http_request, raw_token)
        self._prefetched = getattr(http_request, PREFETCHED_CACHE_VALUES, None)
        user = self.get_user(token)
        context = getattr(http_request, "log_context", None)
        if context is not None:
            context.user_id = user.pk
        return user, token

    def get_user(self, validated_token):
        try:
            user_id = int(validated_token["user_id"])
        except (KeyError, TypeError, ValueError):
            raise InvalidToken("Token contained no recognizable user identification") from None
        snapshot = user_auth_snapshot(user_id=user_id, prefetched=self._prefetched)
        refusal = snapshot_refusal(snapshot, validated_token)
        if refusal is not None:
            raise AuthenticationFailed(*refusal)
        return user_from_snapshot(snapshot)


def snapshot_refusal(snapshot: dict | None, token: AccessToken) -> tuple[str, str] | None:
    """Why the user's snapshot refuses this (validly signed) token, as ``(message, code)``;
    None when the token is good: the user is active, and neither a password change
    (epoch) nor a sign-out (session) has revoked it."""
    if snapshot is None or not snapshot["is_active"]:
        return "User is inactive or deleted.", "user_inactive"
    if token.get(EPOCH_CLAIM) != snapshot["auth_epoch"]:
        return "Token has been revoked.", "token_revoked"
    if token.get(SESSION_CLAIM) in snapshot["revoked_sessions"]:
        return "Token has been revoked.", "token_revoked"
    return None
