"""Signal receivers of the capture adapter (filled in by the capture step)."""


def connect():
    """Connect the capture receivers once (dispatch_uid)."""
