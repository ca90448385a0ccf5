def connect():
    """Connected by D2."""
