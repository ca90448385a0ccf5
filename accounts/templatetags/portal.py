"""Small template helpers for the portal layout."""

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def current(context, prefix: str) -> str:
    """``aria-current="page"`` for a navigation link whose section is open.

    ``prefix`` is a path such as "/requests/"; "/" matches the home page only."""
    request = context.get("request")
    path = getattr(request, "path", "") or ""
    active = path == "/" if prefix == "/" else path.startswith(prefix)
    return 'aria-current="page"' if active else ""
