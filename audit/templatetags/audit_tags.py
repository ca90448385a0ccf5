"""``{% entity_timeline "maintenance_request" obj.code %}``: the change
history of one entity on its detail page, for those allowed to read it
(:func:`audit.api.permissions.can_view_entity_history`: managers; staff for the
maintenance requests they created or are assigned to). The IP address, a
piece of personal data, is shown to managers only."""

from urllib.parse import urlencode

from django import template

from audit import selectors
from audit.api.permissions import can_view_entity_history
from audit.web import presentation
from core.permissions import is_manager

register = template.Library()

TIMELINE_LIMIT = 25


@register.inclusion_tag("audit/_entity_timeline.html", takes_context=True)
def entity_timeline(context, entity_type: str, entity_id, limit: int = TIMELINE_LIMIT):
    request = context.get("request")
    user = getattr(request, "user", None)
    entity_id = str(entity_id)
    if user is None or not can_view_entity_history(user, entity_type, entity_id):
        return {"allowed": False}
    rows = list(selectors.entity_trail(entity_type, entity_id)[: limit + 1])
    manager = is_manager(user)
    return {
        "allowed": True,
        "changes": presentation.change_texts(rows[:limit]),
        "more": len(rows) > limit,
        "show_ip": manager,
        "full_url": "/admin/audit-log?" + urlencode({"entity_type": entity_type, "entity_id": entity_id, "hours": 8760})
        if manager else None,
    }
