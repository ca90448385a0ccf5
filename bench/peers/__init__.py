"""Bench-only app: copies of ``MaintenanceRequest`` (with its comments and
attachments) tracked by our capture and by three peers, installed only by
:mod:`bench.settings_peers`, never by the product. See :mod:`bench.peers.run`."""
