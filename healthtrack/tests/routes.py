"""Every named API route as a concrete path, for tests that must reach all of them."""

from __future__ import annotations

from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse


def _named_patterns(patterns, namespace: str | None = None):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from _named_patterns(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield (f"{namespace}:{pattern.name}" if namespace else pattern.name), pattern


def api_paths(*, user) -> list[str]:
    """A path for every named route under ``/api/`` and ``/health``.

    Path parameters are filled from ``user``: its username where the parameter is a
    name, its id everywhere else (for routes of other objects that is simply an id the
    route may not find, which is still an answer).
    """
    paths = set()
    for name, pattern in _named_patterns(get_resolver().url_patterns):
        kwargs = {
            group: (user.username if "name" in group else str(user.pk))
            for group in pattern.pattern.regex.groupindex
        }
        try:
            path = reverse(name, kwargs=kwargs)
        except NoReverseMatch:
            continue
        if path.startswith(("/api/", "/health")):
            paths.add(path)
    return sorted(paths)
