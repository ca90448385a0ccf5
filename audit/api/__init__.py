"""The real-time audit API: JSON reads, the CSV/JSON Lines export and the
Server-Sent Events stream (views, filters, serializers, permissions, urls)."""
