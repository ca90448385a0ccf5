"""Path converters of the portal's URLs.

``key``: a code or user id segment (``MR001``, ``PE001``): like ``str``, one
segment without ``/``, but never a NUL byte or another control character.
``/requests/%00/`` matched ``str`` and the lookup reached PostgreSQL, which
cannot take a NUL in a text parameter (a DataError, a 500); now such a path
matches no route: a 404.
"""

from django.urls import register_converter


class KeyConverter:
    regex = r"[^/\x00-\x1f\x7f]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value) -> str:
        return str(value)


register_converter(KeyConverter, "key")
