"""Signals the audit app listens to. Declared here so that the API plumbing
does not import the audit app."""

from django.dispatch import Signal

# sent by the Bearer authentication when a token is refused: request, reason
token_rejected = Signal()
