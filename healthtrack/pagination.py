"""``limit``/``skip`` pagination for every list route."""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response


class LimitSkipPagination(LimitOffsetPagination):
    """Offset pagination spelled ``limit`` and ``skip``.

    The body is ``{count, limit, skip, next, previous, results}``. Out-of-range values
    are a 400 naming the parameter rather than being silently clamped.
    """

    default_limit = 50
    max_limit = 500
    # Far beyond any real list, and small enough for every database's OFFSET.
    max_offset = 1_000_000_000
    limit_query_param = "limit"
    offset_query_param = "skip"

    def paginate_queryset(self, queryset, request, view=None):
        # A source that can count and page in one go (``MetricRows.count_and_page``)
        # saves the count its own round trip.
        count_and_page = getattr(queryset, "count_and_page", None)
        if count_and_page is None:
            return super().paginate_queryset(queryset, request, view)
        self.request = request
        self.limit = self.get_limit(request)
        self.offset = self.get_offset(request)
        self.count, page = count_and_page(offset=self.offset, limit=self.limit)
        return page

    def get_limit(self, request):
        return self._parse(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request):
        return self._parse(request, self.offset_query_param, 0, 0, self.max_offset)

    @staticmethod
    def _parse(request, name: str, default: int, minimum: int, maximum: int | None) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise ValidationError({name: ["A whole number is required."]}) from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise ValidationError({name: [f"Must be {bounds}."]})
        return value

    def get_paginated_response(self, data):
        return Response(self.page_body(data))

    def page_body(self, data, *, plain_query: Mapping[str, str] | None = None) -> dict:
        """The body of the page ``data`` (after ``paginate_queryset``, or with ``request``,
        ``limit``, ``offset`` and ``count`` set by the caller).

        ``plain_query``: the request's query parameters when each is given once and none
        needs escaping; the links are then written directly instead of by parsing the
        request's URL twice (what DRF's ``replace_query_param`` gives for such a query:
        the parameters sorted by name).
        """
        if plain_query is None:
            next_link, previous_link = self.get_next_link(), self.get_previous_link()
        else:
            next_link, previous_link = self._plain_links(plain_query)
        return {
            "count": self.count,
            "limit": self.limit,
            "skip": self.offset,
            "next": next_link,
            "previous": previous_link,
            "results": data,
        }

    def _plain_links(self, query: Mapping[str, str]) -> tuple[str | None, str | None]:
        has_next = self.offset + self.limit < self.count
        if not has_next and self.offset <= 0:
            return None, None
        base = self.request.build_absolute_uri(self.request.path)
        params = {**query, self.limit_query_param: str(self.limit)}

        def link(skip: int | None) -> str:
            wanted = dict(params)
            if skip is None:
                wanted.pop(self.offset_query_param, None)
            else:
                wanted[self.offset_query_param] = str(skip)
            return base + "?" + "&".join(f"{name}={wanted[name]}" for name in sorted(wanted))

        next_link = link(self.offset + self.limit) if has_next else None
        previous_link = None
        if self.offset > 0:
            previous_link = link(None if self.offset - self.limit <= 0 else self.offset - self.limit)
        return next_link, previous_link

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["count", "limit", "skip", "next", "previous", "results"],
            "properties": {
                "count": {"type": "integer", "example": 123},
                "limit": {"type": "integer", "example": self.default_limit},
                "skip": {"type": "integer", "example": 0},
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.limit_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page (1-{self.max_limit}, default {self.default_limit}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_limit},
            },
            {
                "name": self.offset_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows to skip before the first one returned (0-{self.max_offset:,}).",
                "schema": {"type": "integer", "minimum": 0, "maximum": self.max_offset},
            },
        ]
