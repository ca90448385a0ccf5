"""Domain errors raised by services and turned into HTTP answers by the API
and the portal."""


class DomainError(Exception):
    """A business rule refused the operation (400)."""

    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.field = field
        if code:
            self.code = code


class TransitionError(DomainError):
    """An illegal status transition (409)."""

    code = "invalid_transition"
