"""Emergencies and inventory in the portal."""

import pytest

from emergencies.models import Emergency
from maintenance.models import InventoryItem


def _html(response):
    return response.content.decode()


def test_staff_reports_an_emergency(as_, world):
    response = as_("other_staff").post(
        "/emergencies/new/",
        {"vessel": "MV Polar", "emergency_type": "flooding", "severity": "critical", "location": "Berth 2",
         "description": "Water in the engine room"},
    )
    emergency = Emergency.objects.get(vessel="MV Polar")
    assert response["Location"] == f"/emergencies/{emergency.code}/"
    assert (emergency.reported_by, emergency.severity, emergency.status) == (world["other_staff"], "critical", "reported")
    html = _html(as_("other_staff").get(response["Location"]))
    assert "Water in the engine room" in html
    assert 'name="assigned_to"' not in _html(as_("other_staff").get("/emergencies/new/"))


def test_emergency_buttons_only_for_managers(as_, world):
    emergency = world["emergency"]
    staff_html = _html(as_("staff").get(f"/emergencies/{emergency.code}/"))
    for action in ("acknowledge", "dispatch", "resolve", "close", "assign"):
        assert f'action="/emergencies/{emergency.code}/{action}/"' not in staff_html
    html = _html(as_("engineer").get(f"/emergencies/{emergency.code}/"))
    assert f'action="/emergencies/{emergency.code}/acknowledge/"' in html
    assert f'action="/emergencies/{emergency.code}/assign/"' in html
    assert f'action="/emergencies/{emergency.code}/dispatch/"' not in html
    assert f'action="/emergencies/{emergency.code}/close/"' not in html


def test_emergency_assign_and_illegal_move_message(as_, world):
    emergency = world["emergency"]
    client = as_("engineer")
    client.post(f"/emergencies/{emergency.code}/assign/", {"assignee": "ST002", "reason": "On duty"})
    emergency.refresh_from_db()
    assert emergency.assigned_to == world["other_staff"]
    assert emergency.code in _html(as_("other_staff").get("/emergencies/"))
    response = client.post(f"/emergencies/{emergency.code}/close/", {}, follow=True)
    assert response.status_code == 200
    assert f"Cannot close emergency {emergency.code}" in _html(response)


def test_emergency_filters(as_, world):
    client = as_("engineer")
    assert world["emergency"].code in _html(client.get("/emergencies/?severity=high&emergency_type=fire&active=on"))
    assert "No emergency matches" in _html(client.get("/emergencies/?severity=critical"))
    assert "No emergency matches" in _html(client.get("/emergencies/?status=closed"))


def test_reporter_edits_while_reported_with_reason(as_, world):
    emergency = world["emergency"]
    response = as_("staff").post(
        f"/emergencies/{emergency.code}/edit/",
        {"vessel": "MV Aurora", "emergency_type": "fire", "severity": "critical", "location": "Galley",
         "description": "Galley fire, spreading", "reason": "It got worse"},
    )
    assert response.status_code == 302
    emergency.refresh_from_db()
    assert (emergency.severity, emergency.location) == ("critical", "Galley")
    as_("engineer").post(f"/emergencies/{emergency.code}/acknowledge/", {})
    assert as_("staff").get(f"/emergencies/{emergency.code}/edit/").status_code == 403


def test_inventory_create_edit_adjust(as_, world):
    client = as_("engineer")
    response = client.post("/inventory/new/", {"part_number": "GK-9", "name": "Gasket kit", "location": "B2",
                                                "quantity_on_hand": 4, "minimum_stock": 2, "reason": "New stock line"})
    item = InventoryItem.objects.get(part_number="GK-9")
    assert response["Location"] == f"/inventory/{item.code}/"
    client.post(f"/inventory/{item.code}/edit/", {"part_number": "GK-9", "name": "Gasket kit (large)", "location": "B3",
                                                  "quantity_on_hand": 4, "minimum_stock": 2, "reason": "Renamed"})
    item.refresh_from_db()
    assert (item.name, item.location) == ("Gasket kit (large)", "B3")
    too_many = client.post(f"/inventory/{item.code}/adjust/", {"quantity_change": -9, "reason": "Used"}, follow=True)
    assert "only 4 in stock" in _html(too_many)
    client.post(f"/inventory/{item.code}/adjust/", {"quantity_change": -3, "reason": "Used on MR001"})
    item.refresh_from_db()
    assert item.quantity_on_hand == 1
    html = _html(client.get(f"/inventory/{item.code}/"))
    assert "Used on MR001" in html and "-3" in html


@pytest.mark.parametrize("data,message", [({"quantity_change": 0, "reason": "x"}, "cannot be zero"),
                                          ({"quantity_change": 2, "reason": ""}, "This field is required")])
def test_adjust_form_errors_are_messages(data, message, as_, world):
    item = world["item"]
    response = as_("admin").post(f"/inventory/{item.code}/adjust/", data, follow=True)
    assert message in _html(response)
    item.refresh_from_db()
    assert item.quantity_on_hand == 1


def test_inventory_list_low_stock_and_search(as_, world):
    from maintenance import services

    services.create_item(actor=world["admin"], part_number="OK-1", name="Plenty part", quantity_on_hand=50, minimum_stock=1)
    client = as_("staff")
    low = _html(client.get("/inventory/?low_stock=on"))
    assert "Impeller" in low and "Plenty part" not in low
    assert "Plenty part" in _html(client.get("/inventory/?q=plenty"))
    assert 'href="/inventory/new/"' not in _html(client.get("/inventory/"))
    assert 'action="/inventory/' not in _html(client.get(f"/inventory/{world['item'].code}/"))
    assert 'href="/inventory/new/"' in _html(as_("engineer").get("/inventory/"))
