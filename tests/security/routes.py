"""Every URL pattern of the project, read from the resolver (never a hand list), and how to fill its kwargs."""
from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern

_ROUTE_PARAM = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>\w+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?:[^()\\]|\\.|\([^()]*\))*\)")


def _route_value(m: re.Match, kwargs: dict) -> str:
    value = str(kwargs[m.group("name")])
    return f".{value}" if m.group("conv") == "drf_format_suffix" else value  # DRF's suffix converter takes ".json"


@dataclass(frozen=True)
class Route:
    parts: tuple  # the pattern objects from the root to the endpoint
    name: str | None  # namespaced name ("trial:detail"), None when unnamed
    callback: object

    @property
    def pattern(self) -> str:
        return "".join(str(p.pattern) for p in self.parts)

    @property
    def key(self) -> str:
        """The expectations table's key: the route's name, else its full pattern string."""
        return self.name or self.pattern

    @property
    def params(self) -> list[str]:
        out = []
        for p in self.parts:
            if isinstance(p.pattern, RegexPattern):
                out += [m.group("name") for m in _REGEX_GROUP.finditer(str(p.pattern))]
            else:
                out += [m.group("name") for m in _ROUTE_PARAM.finditer(str(p.pattern))]
        return out

    @property
    def is_admin(self) -> bool:
        return self.pattern.startswith("admin/")

    @property
    def is_api(self) -> bool:
        return self.pattern.startswith("api/")

    def path(self, kwargs: dict) -> str:
        out = "/"
        for p in self.parts:
            s = str(p.pattern)
            if isinstance(p.pattern, RegexPattern):
                s = _REGEX_GROUP.sub(lambda m: str(kwargs[m.group("name")]), s)
                s = s.lstrip("^").rstrip("$").replace("/?", "").replace("\\.", ".")
            else:
                s = _ROUTE_PARAM.sub(lambda m: _route_value(m, kwargs), s)
            out += s
        return out


def all_routes() -> list[Route]:
    routes: list[Route] = []

    def walk(patterns, parts, ns):
        for p in patterns:
            if isinstance(p, URLResolver):
                sub_ns = f"{ns}:{p.namespace}" if ns and p.namespace else (p.namespace or ns)
                walk(p.url_patterns, (*parts, p), sub_ns)
            elif isinstance(p, URLPattern):
                name = f"{ns}:{p.name}" if ns and p.name else p.name
                routes.append(Route((*parts, p), name, p.callback))

    walk(get_resolver().url_patterns, (), None)
    return routes
