"""URL dispatch that tries only the routes a path can match.

Pyramid's mapper tries every route's regular expression in order until
one matches. The service declares about thirty routes, and
``/{hypervisor}/{host}/guests/{guest_id}`` is the tenth, so each guest
request failed nine matches first. A placeholder ``{name}`` matches one or
more characters other than "/", so a route without ``*``, ``:`` or a
placeholder regular expression matches only paths with as many slashes as
its pattern. This mapper tries, in the same order as Pyramid's, the routes
of the path's slash count and the routes of any count, so every path
matches the route that Pyramid's mapper would choose.
"""

import re

from pyramid.exceptions import URLDecodeError
from pyramid.urldispatch import RoutesMapper

# A pattern made of literal text and plain ``{name}`` placeholders.
FIXED_SLASHES_PATTERN = re.compile(r"(?:[^{}*:]|\{[_a-zA-Z]\w*\})*")


def fixed_slash_count(pattern):
    """Return the slash count of every path that ``pattern`` matches, or
    None when it matches paths of several counts."""
    if not pattern.startswith("/"):
        # Pyramid adds the leading slash itself.
        pattern = "/" + pattern
    if not FIXED_SLASHES_PATTERN.fullmatch(pattern):
        return None
    return pattern.count("/")


class SlashCountRoutesMapper(RoutesMapper):
    """A routes mapper that skips routes of another slash count."""

    def __init__(self):
        super().__init__()
        # Slash count -> the routes to try, in order. Counts above the
        # highest fixed count share one entry, so the dict stays small
        # whatever paths callers send.
        self._candidates = {}
        self._highest_count = 0

    def connect(self, *args, **kwargs):
        route = super().connect(*args, **kwargs)
        self._candidates = {}
        counts = [fixed_slash_count(route.pattern)
                  for route in self.routelist]
        self._highest_count = max(
            [count for count in counts if count is not None], default=0)
        return route

    def _routes_for(self, slashes):
        key = min(slashes, self._highest_count + 1)
        routes = self._candidates.get(key)
        if routes is None:
            routes = tuple(
                route for route in self.routelist
                if fixed_slash_count(route.pattern) in (None, key))
            self._candidates[key] = routes
        return routes

    def __call__(self, request):
        # The same path and errors as Pyramid 2.1's RoutesMapper.__call__.
        try:
            path = request.path_info or "/"
        except KeyError:
            path = "/"
        except UnicodeDecodeError as error:
            raise URLDecodeError(error.encoding, error.object, error.start,
                                 error.end, error.reason)

        for route in self._routes_for(path.count("/")):
            match = route.match(path)
            if match is not None:
                predicates = route.predicates
                info = {"match": match, "route": route}
                if predicates and not all(
                        predicate(info, request) for predicate in predicates):
                    continue
                return info

        return {"route": None, "match": None}
