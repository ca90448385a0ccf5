from django.contrib import admin

from forwarding.models import ForwardCursor


@admin.register(ForwardCursor)
class ForwardCursorAdmin(admin.ModelAdmin):
    """Read-only: cursors move only when a sink accepts a batch."""

    list_display = ("sink", "table", "last_id", "rows_sent", "last_sent_at", "failures", "last_error")
    list_filter = ("sink", "table")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
