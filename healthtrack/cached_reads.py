"""Cache hits answered before the framework: the hottest reads, served as stored.

A person's recommendations and metric summary are finished JSON bodies in the cache
almost every time a client asks for them (``insights.services.recommendations_body``,
``metrics.selectors.metric_summary_body``). Through DRF such a hit costs several times
what reading it does: sessions, CSRF, authentication classes, content negotiation,
permission classes and query serializers run for a request whose answer is one cache
read. ``CachedReadMiddleware`` answers it itself, but only when everything the view
would check holds:

* a ``GET`` without a body, asking for JSON (no ``Accept``, ``*/*`` or
  ``application/json``);
* a validly signed, unexpired access token whose user's current authentication
  snapshot accepts it: active, not revoked by a password change or a sign-out (the
  same ``snapshot_refusal`` as ``users.authentication.JWTAuthentication``);
* the person asked about is the caller (a clinician or an administrator reading
  someone else's data goes through the view and its authorization);
* query parameters in the plain form the route declares (anything else, valid or not,
  is left to the view, which gives the usual 400 naming the field);
* a cache entry stored under the person's current data version.

The request is counted against the rate limits in the same Redis round trip that reads
the snapshot and the entry, so a hit costs one round trip. It leaves the same audit row
(``audit_request_finish``), request log line, ``/metrics`` counters and headers as the
view's answer. In every other case the request goes on down the stack unchanged (already
counted once). ``CACHED_READS_ENABLED=false`` turns this off. ``tests/test_cached_reads.py``
asserts that both paths give the same status, headers, body and audit rows.

The same middleware answers the ``DIRECT_ROUTES`` (``DirectRoute``): plain requests on
one's own data whose answer is not a cache entry but one service or selector call (the
metric list, a metric POST). The checks above come first (a POST must also carry a JSON
body with ``Content-Length`` within ``MAX_REQUEST_BODY_BYTES``); the route's ``answer``
then gives the body, or None for anything its view would answer otherwise (a body the
view refuses, a parameter it does not take plainly), which goes to the view.
``DIRECT_ROUTES_ENABLED=false`` turns them off; ``tests/test_direct_routes.py``
compares both paths.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from healthtrack.audit import audit_request_finish, audit_set
from healthtrack.cache import cached_for_user_hit, cached_for_user_keys
from healthtrack.errors import database_unavailable, database_unavailable_response, mark_database_unavailable
from healthtrack.models import AuditAction
from healthtrack.ratelimit import PREFETCHED_CACHE_VALUES, api_rate_limit_wait, rate_limited_response
from users.authentication import bearer_token, snapshot_refusal, validated_access_token
from users.selectors import user_auth_snapshot_current, user_auth_snapshot_keys

_JSON_ACCEPTS = frozenset({"", "*/*", "application/json"})
_JSON_CONTENT_TYPES = frozenset({"application/json", "application/json; charset=utf-8"})
_PLAIN_ID = re.compile(r"[1-9][0-9]{0,18}")


@dataclass(frozen=True)
class CachedRead:
    """A read route whose cache hits ``CachedReadMiddleware`` may answer.

    ``path`` matches the whole (slash-normalised) path; a ``user_id`` group names the
    person asked about, as does the ``subject_param`` query parameter; without either
    it is the caller. ``entry(query)`` gives the ``cached_for_user`` name and key parts
    for the query parameters, or None when they are not in the plain form the route
    answers here. ``body(value, snapshot)`` gives the response body from the cached
    value, or None when the value does not fit the caller (e.g. another local day).
    ``view`` is the view answering the route otherwise (for its ``Allow`` header),
    ``view_name`` and ``resource_type`` are its URL name and audit resource type.
    ``query_names`` are the query parameters the route answers here; any other (DRF's
    ``format`` for one) sends the request to the view.
    """

    path: re.Pattern[str]
    view: type
    view_name: str
    resource_type: str
    entry: Callable[[Mapping[str, str]], tuple[str, tuple] | None]
    body: Callable[[Any, dict[str, Any]], bytes | None]
    query_names: frozenset[str]
    subject_param: str | None = None
    method: ClassVar[str] = "GET"
    enabled_setting: ClassVar[str] = "CACHED_READS_ENABLED"

    def keys_to_read(self, user_id: int, query: Mapping[str, str]) -> tuple[list[str], Any] | None:
        """The cache keys to read with the request's rate-limit round trip, and what
        ``respond`` needs of them; None when the query is not one answered here."""
        entry = self.entry(query)
        if entry is None:
            return None
        name, parts = entry
        return cached_for_user_keys(user_id, name, parts), entry

    def respond(self, request, user_id: int, query, entry, found, snapshot) -> DirectAnswer | None:
        """The answer from the cached value, if it was found and fits the caller."""
        name, parts = entry
        hit, value = cached_for_user_hit(found, user_id, name, parts)
        body = self.body(value, snapshot) if hit else None
        return None if body is None else DirectAnswer(body)


@dataclass(frozen=True)
class DirectAnswer:
    """What a ``DirectRoute`` answered: the JSON body, its status, and what the audit
    row says the request did (``action`` on ``object_ids``)."""

    body: bytes
    object_ids: Sequence = ()
    status: int = 200
    action: str = AuditAction.READ


@dataclass(frozen=True)
class DirectRoute:
    """A route whose plain requests on the caller's own data ``CachedReadMiddleware``
    answers itself, without the framework: ``answer(request, user_id, query)`` gives a
    ``DirectAnswer``, or None to leave the request to the view (which then gives its
    usual answer, e.g. the 400 naming a field). ``method`` is ``GET`` (no body) or
    ``POST`` (a JSON body with ``Content-Length``, within the default body limit). The
    other fields are ``CachedRead``'s.
    """

    path: re.Pattern[str]
    view: type
    view_name: str
    resource_type: str
    answer: Callable[[HttpRequest, int, Mapping[str, str]], DirectAnswer | None]
    query_names: frozenset[str]
    method: str = "GET"
    subject_param: str | None = None
    enabled_setting: ClassVar[str] = "DIRECT_ROUTES_ENABLED"

    def keys_to_read(self, user_id: int, query: Mapping[str, str]) -> tuple[list[str], Any]:
        return [], None  # answered by its own query, not from the cache

    def respond(self, request, user_id: int, query, entry, found, snapshot) -> DirectAnswer | None:
        return self.answer(request, user_id, query)


def plain_int(raw: str | None, *, default: int, low: int, high: int) -> int | None:
    """``raw`` as a whole number in [low, high] written plainly (digits, no sign, no
    leading zero), ``default`` when absent; None for anything else."""
    if raw is None:
        return default
    if raw == "0":
        return 0 if low <= 0 <= high else None
    if not _PLAIN_ID.fullmatch(raw):
        return None
    value = int(raw)
    return value if low <= value <= high else None


@dataclass(frozen=True)
class _ViewMatch:
    """What /metrics reads of ``request.resolver_match`` (``view_name``), for a request
    answered before URL resolution."""

    view_name: str


def _single_values(request: HttpRequest) -> dict[str, str] | None:
    """The query parameters, each given once; None when one is repeated."""
    query = request.GET
    values = {}
    for name, given in query.lists():
        if len(given) != 1:
            return None
        values[name] = given[0]
    return values


class CachedReadMiddleware:
    """Answer cache hits of the ``CACHED_READS`` routes (see the module docstring).

    Sits where the rate limits are counted (after CORS, which adds its headers to the
    answer; before sessions, CSRF, authentication and the audit middleware, whose work
    it does itself or does not need)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.routes: list[CachedRead | DirectRoute] = [
            import_string(name) for name in (*settings.CACHED_READS, *settings.DIRECT_ROUTES)
        ]
        # Headers the view's answer gets from DRF and the middleware after this one.
        self.headers = {route: self._headers(route) for route in self.routes}
        self.methods = frozenset(route.method for route in self.routes)

    @staticmethod
    def _headers(route: CachedRead | DirectRoute) -> dict[str, str]:
        view = route.view()
        view.setup(HttpRequest())  # as for a request: adds HEAD where there is GET
        headers = {"Allow": ", ".join(view.allowed_methods)}
        if "django.middleware.clickjacking.XFrameOptionsMiddleware" in settings.MIDDLEWARE:
            headers["X-Frame-Options"] = settings.X_FRAME_OPTIONS
        return headers

    def __call__(self, request: HttpRequest) -> HttpResponse:
        method = request.method
        if method in self.methods:
            path = request.path_info
            for route in self.routes:
                if route.method != method or not getattr(settings, route.enabled_setting):
                    continue
                match = route.path.fullmatch(path)
                if match is not None:
                    response = self._answer(request, route, match)
                    if response is not None:
                        return response
                    break
        return self.get_response(request)

    def _plain_body(self, request: HttpRequest, route: CachedRead | DirectRoute) -> bool:
        """No body for a GET; for a POST a JSON body whose length is given and within
        the limit ``ApiPathMiddleware`` would apply (anything else is the view's)."""
        meta = request.META
        if "HTTP_TRANSFER_ENCODING" in meta:
            return False
        length = meta.get("CONTENT_LENGTH", "")
        if route.method == "GET":
            return length in ("", "0")
        if meta.get("CONTENT_TYPE") not in _JSON_CONTENT_TYPES or not _PLAIN_ID.fullmatch(length):
            return False
        return int(length) <= settings.MAX_REQUEST_BODY_BYTES

    def _answer(
        self, request: HttpRequest, route: CachedRead | DirectRoute, match: re.Match
    ) -> HttpResponse | None:
        meta = request.META
        if not self._plain_body(request, route):
            return None
        if meta.get("HTTP_ACCEPT", "") not in _JSON_ACCEPTS:
            return None
        raw_token = bearer_token(request)
        if raw_token is None:
            return None
        try:
            token = validated_access_token(request, raw_token)
            user_id = int(token[jwt_settings.USER_ID_CLAIM])
        except (InvalidToken, KeyError, TypeError, ValueError):
            return None
        query = _single_values(request)
        if query is None or not query.keys() <= route.query_names:
            return None
        subject = match.groupdict().get("user_id")
        if subject is None and route.subject_param is not None:
            subject = query.get(route.subject_param)
        if subject is not None and subject != str(user_id):
            return None
        to_read = route.keys_to_read(user_id, query)
        if to_read is None:
            return None
        entry_keys, entry = to_read
        found = None
        if settings.RATE_LIMIT_ENABLED:
            wait = api_rate_limit_wait(request, also_read=entry_keys)
            if wait is not None:
                return rate_limited_response(wait)
            found = getattr(request, PREFETCHED_CACHE_VALUES, None)
        if found is None:  # not on Redis, or limits off: read them here
            found = cache.get_many([*user_auth_snapshot_keys(user_id), *entry_keys])
        snapshot = user_auth_snapshot_current(user_id=user_id, found=found)
        if snapshot is None or snapshot_refusal(snapshot, token) is not None:
            return None
        try:
            answer = route.respond(request, user_id, query, entry, found, snapshot)
        except Exception as error:
            if not database_unavailable(error):
                raise  # a bug: Django's handler answers the JSON 500
            # What ApiPathMiddleware answers when the view meets a database that is down.
            mark_database_unavailable(request)
            return database_unavailable_response()
        if answer is None:
            return None
        body = answer.body
        request.resolver_match = _ViewMatch(route.view_name)
        context = getattr(request, "log_context", None)
        if context is not None:
            context.user_id = user_id
        response = HttpResponse(
            body, content_type="application/json", status=answer.status, headers=self.headers[route]
        )
        response["Content-Length"] = str(len(body))
        audit_set(
            request,
            action=answer.action,
            resource_type=route.resource_type,
            subject_id=user_id,
            object_ids=answer.object_ids,
            actor_id=user_id,
        )
        audit_request_finish(request, status=response.status_code)
        return response
