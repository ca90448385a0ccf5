"""A text field's limit is the model's: the API, the portal's form and the service each accept a
value of exactly that length and refuse one character more, naming the field. The limits are
read from the model here too, so changing a model's max_length moves every surface with it."""

from __future__ import annotations

import itertools

import pytest

from accounts import services as account_services
from accounts.forms import ProfileForm
from accounts.models import User
from core.errors import DomainError
from core.lengths import max_length
from emergencies import services as emergency_services
from emergencies.forms import EmergencyForm
from emergencies.models import DESCRIPTION_MAX_LENGTH as EMERGENCY_DESCRIPTION_MAX_LENGTH
from emergencies.models import Emergency
from maintenance import services as maintenance_services
from maintenance.forms import ItemForm, RequestForm
from maintenance.models import InventoryItem, MaintenanceRequest

pytestmark = pytest.mark.django_db

_numbers = itertools.count(1)


def _part() -> str:
    return f"P-{next(_numbers)}"


def _request(field, value):
    return {"vessel": "MV Aurora", "title": "Bilge pump", field: value}


def _item(field, value):
    return {"part_number": _part(), "name": "Impeller", field: value}


def _emergency(field, value):
    return {"vessel": "MV Northern Star", "emergency_type": "fire", "description": "Smoke", "severity": "high",
            field: value}


# each kind of record: who acts, its API call, its form and its service, given a field and a value
REQUEST = ("staff",
           lambda c, f, v: c.post("/api/maintenance-requests/", _request(f, v), format="json"),
           lambda f, v, u: RequestForm(data={"category": "other", "priority": "medium", **_request(f, v)}, user=u),
           lambda f, v, u: maintenance_services.create_request(actor=u, **_request(f, v)))
ITEM = ("engineer",
        lambda c, f, v: c.post("/api/inventory/", _item(f, v), format="json"),
        lambda f, v, u: ItemForm(data={"quantity_on_hand": 0, "minimum_stock": 0, **_item(f, v)}),
        lambda f, v, u: maintenance_services.create_item(actor=u, **_item(f, v)))
EMERGENCY = ("engineer",
             lambda c, f, v: c.post("/api/emergencies/", _emergency(f, v), format="json"),
             lambda f, v, u: EmergencyForm(data=_emergency(f, v), user=u),
             lambda f, v, u: emergency_services.report_emergency(actor=u, **_emergency(f, v)))
PROFILE = ("staff",
           lambda c, f, v: c.patch("/api/users/me/", {f: v}, format="json"),
           lambda f, v, u: ProfileForm(data={f: v}),
           lambda f, v, u: account_services.update_profile(user=u, actor=u, **{f: v}))

# name: (field, its limit from the model, the kind of record)
CASES = {
    "maintenance request vessel": ("vessel", max_length(MaintenanceRequest, "vessel"), REQUEST),
    "maintenance request title": ("title", max_length(MaintenanceRequest, "title"), REQUEST),
    "inventory part number": ("part_number", max_length(InventoryItem, "part_number"), ITEM),
    "inventory name": ("name", max_length(InventoryItem, "name"), ITEM),
    "inventory location": ("location", max_length(InventoryItem, "location"), ITEM),
    "emergency vessel": ("vessel", max_length(Emergency, "vessel"), EMERGENCY),
    "emergency location": ("location", max_length(Emergency, "location"), EMERGENCY),
    "emergency description": ("description", EMERGENCY_DESCRIPTION_MAX_LENGTH, EMERGENCY),
    **{f"account {name}": (name, max_length(User, name), PROFILE) for name in ("full_name", "phone", "department")},
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_api_the_form_and_the_service_take_the_models_length_and_refuse_one_more(api, personas, case):
    field, limit, (who, call_api, form, service) = CASES[case]
    user = personas[who]
    client = api(user)
    exact, over = "a" * limit, "a" * (limit + 1)

    accepted = call_api(client, field, exact)
    assert accepted.status_code in (200, 201), accepted.content
    refused = call_api(client, field, over)
    assert refused.status_code == 400, refused.content
    assert field in refused.json()["error"]["fields"]

    assert field not in form(field, exact, user).errors
    assert field in form(field, over, user).errors

    service(field, "s" * limit, user)  # another letter: a part number is unique
    with pytest.raises(DomainError) as error:
        service(field, "s" * (limit + 1), user)
    assert error.value.field == field


def test_a_change_reason_has_one_limit_on_the_api_the_portal_and_the_admin(api, personas):
    from core.lengths import CHANGE_REASON_MAX_LENGTH
    from emergencies.admin import EmergencyAdminForm

    client = api(personas["staff"])
    exact, over = "r" * CHANGE_REASON_MAX_LENGTH, "r" * (CHANGE_REASON_MAX_LENGTH + 1)
    assert client.post("/api/maintenance-requests/", {**_request("vessel", "MV A"), "change_reason": exact},
                       format="json").status_code == 201
    refused = client.post("/api/maintenance-requests/", {**_request("vessel", "MV B"), "change_reason": over},
                          format="json")
    assert refused.status_code == 400 and "change_reason" in refused.json()["error"]["fields"]
    assert client.patch("/api/users/me/", {"phone": "1", "change_reason": over}, format="json").status_code == 400

    assert "reason" not in RequestForm(data={"reason": exact}, user=personas["staff"]).errors
    assert "reason" in RequestForm(data={"reason": over}, user=personas["staff"]).errors
    assert "reason" in ProfileForm(data={"reason": over}).errors
    assert "change_reason" not in EmergencyAdminForm(data={"change_reason": exact}).errors
    assert "change_reason" in EmergencyAdminForm(data={"change_reason": over}).errors
