"""Whole numbers that arrive as text (URLs, query strings, search terms)."""


def ascii_digits(text: str) -> bool:
    """A non-empty run of the digits 0-9 and nothing else. ``str.isdigit()`` is also true of
    ``"²"``, which ``int()`` refuses (a server error where a clear 400 belongs), and of other
    scripts' digits, which nobody means as a row id or a page number here."""
    return text.isascii() and text.isdigit()
