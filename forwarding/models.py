"""How far each sink has been served, per audit table."""

from django.db import models
from django.utils import timezone


class ForwardCursor(models.Model):
    """The last row id of ``table`` that ``sink`` has received. Rows with a greater id are
    still to be sent; the cursor only moves after a sink accepted a batch, so a restart or an
    outage resends from here (a duplicate is possible, recognisable by the record's id)."""

    sink = models.CharField(max_length=200, help_text="The sink's name (its URL without credentials).")
    table = models.CharField(max_length=50, help_text="The audit table, as in the database.")
    last_id = models.BigIntegerField(default=0, help_text="The last row id the sink accepted.")
    rows_sent = models.BigIntegerField(default=0, help_text="Rows accepted by the sink so far (duplicates included).")
    last_sent_at = models.DateTimeField(null=True, blank=True, help_text="When the sink last accepted a batch.")
    failures = models.PositiveIntegerField(default=0, help_text="Failed attempts since the last success.")
    last_error = models.TextField(blank=True, help_text="The last failure, without credentials.")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "forward_cursors"
        constraints = [models.UniqueConstraint(fields=["sink", "table"], name="forward_cursor_sink_table")]
        ordering = ["sink", "table"]
        verbose_name = "forwarding cursor"

    def __str__(self):
        return f"{self.sink} / {self.table}: up to row {self.last_id}"
