"""The permission matrix of every portal page and action, for anonymous,
staff (the owner), other staff, port engineer and admin.

Someone else's request or emergency is a 404 for staff (it is never
confirmed to exist); a page or action their role may not use is a 403."""

import pytest

ROLES = ["staff", "other_staff", "engineer", "admin"]

# path template -> expected status per role (anonymous is always a redirect to login)
PAGES = {
    "/": dict(staff=200, other_staff=200, engineer=200, admin=200),
    "/profile/": dict(staff=200, other_staff=200, engineer=200, admin=200),
    "/profile/password/": dict(staff=200, other_staff=200, engineer=200, admin=200),
    "/users/": dict(staff=403, other_staff=403, engineer=200, admin=200),
    "/users/ST009/": dict(staff=403, other_staff=403, engineer=200, admin=200),
    "/requests/": dict(staff=200, other_staff=200, engineer=200, admin=200),
    "/requests/new/": dict(staff=200, other_staff=200, engineer=200, admin=200),
    "/requests/{mr}/": dict(staff=200, other_staff=404, engineer=200, admin=200),
    "/requests/{mr}/edit/": dict(staff=200, other_staff=404, engineer=200, admin=200),
    "/requests/{mr}/attachments/{att}/download/": dict(staff=200, other_staff=404, engineer=200, admin=200),
    "/inventory/": dict(staff=200, other_staff=200, engineer=200, admin=200),
    "/inventory/new/": dict(staff=403, other_staff=403, engineer=200, admin=200),
    "/inventory/{inv}/": dict(staff=200, other_staff=200, engineer=200, admin=200),
    "/inventory/{inv}/edit/": dict(staff=403, other_staff=403, engineer=200, admin=200),
    "/emergencies/": dict(staff=200, other_staff=200, engineer=200, admin=200),
    "/emergencies/new/": dict(staff=200, other_staff=200, engineer=200, admin=200),
    "/emergencies/{emg}/": dict(staff=200, other_staff=404, engineer=200, admin=200),
    "/emergencies/{emg}/edit/": dict(staff=200, other_staff=404, engineer=200, admin=200),
}


def _fill(template, world):
    return template.format(
        mr=world["request"].code, att=world["attachment"].pk, inv=world["item"].code, emg=world["emergency"].code
    )


@pytest.mark.parametrize("template", PAGES)
def test_anonymous_is_sent_to_login_with_next(template, as_, world):
    path = _fill(template, world)
    response = as_(None).get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("template", PAGES)
def test_page_access_by_role(template, role, as_, world):
    response = as_(role).get(_fill(template, world))
    assert response.status_code == PAGES[template][role]


@pytest.mark.parametrize(
    "path",
    ["/requests/X/approve/", "/emergencies/X/acknowledge/", "/users/ST009/approve/", "/inventory/X/adjust/",
     "/requests/X/comments/", "/requests/X/attachments/"],
)
def test_anonymous_post_is_sent_to_login(path, as_, world):
    path = path.replace("/requests/X/", f"/requests/{world['request'].code}/").replace(
        "/emergencies/X/", f"/emergencies/{world['emergency'].code}/").replace("/inventory/X/", f"/inventory/{world['item'].code}/")
    response = as_(None).post(path, {"reason": "x"})
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("path", ["/requests/{mr}/approve/", "/emergencies/{emg}/acknowledge/", "/users/ST009/approve/",
                                  "/inventory/{inv}/adjust/", "/logout/"])
def test_actions_refuse_get(path, as_, world):
    assert as_("engineer").get(_fill(path, world)).status_code == 405


# --- maintenance request actions -------------------------------------------------------

# action on a pending request -> expected status per role (302 = done, back to the detail page)
REQUEST_ACTIONS = {
    "approve": dict(staff=403, other_staff=404, engineer=302, admin=302),
    "reject": dict(staff=403, other_staff=404, engineer=302, admin=302),
    "assign": dict(staff=403, other_staff=404, engineer=302, admin=302),
    "cancel": dict(staff=302, other_staff=404, engineer=302, admin=302),
    "start": dict(staff=403, other_staff=404, engineer=302, admin=302),  # 302 with a "cannot start" message
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", REQUEST_ACTIONS)
def test_request_action_refused_on_the_server(action, role, as_, world):
    obj = world["request"]
    data = {"reason": "Checked on board", "assignee": "ST002"}
    response = as_(role).post(f"/requests/{obj.code}/{action}/", data)
    expected = REQUEST_ACTIONS[action][role]
    assert response.status_code == expected
    obj.refresh_from_db()
    if expected != 302:
        assert obj.status == "pending"
        assert obj.assigned_to is None
    else:
        assert response["Location"] == f"/requests/{obj.code}/"


def test_unknown_request_action_is_404(as_, world):
    assert as_("admin").post(f"/requests/{world['request'].code}/explode/").status_code == 404


# --- emergency actions -------------------------------------------------------------------

EMERGENCY_ACTIONS = ["acknowledge", "assign", "dispatch", "resolve", "close"]


@pytest.mark.parametrize("action", EMERGENCY_ACTIONS)
def test_staff_cannot_handle_emergencies(action, as_, world):
    emergency = world["emergency"]
    assert as_("staff").post(f"/emergencies/{emergency.code}/{action}/", {"assignee": "ST001"}).status_code == 403
    assert as_("other_staff").post(f"/emergencies/{emergency.code}/{action}/", {"assignee": "ST001"}).status_code == 404
    emergency.refresh_from_db()
    assert emergency.status == "reported"
    assert emergency.assigned_to is None


@pytest.mark.parametrize("role", ["engineer", "admin"])
def test_managers_handle_an_emergency_through_its_life_cycle(role, as_, world):
    client, emergency = as_(role), world["emergency"]
    for action, status in [("acknowledge", "acknowledged"), ("dispatch", "dispatched"), ("resolve", "resolved"),
                           ("close", "closed")]:
        response = client.post(f"/emergencies/{emergency.code}/{action}/", {"reason": f"{action} now"})
        assert response.status_code == 302
        emergency.refresh_from_db()
        assert emergency.status == status


# --- inventory and users -----------------------------------------------------------------------


@pytest.mark.parametrize("role,expected", [("staff", 403), ("other_staff", 403), ("engineer", 302), ("admin", 302)])
def test_stock_adjustment_by_role(role, expected, as_, world):
    item = world["item"]
    response = as_(role).post(f"/inventory/{item.code}/adjust/", {"quantity_change": 5, "reason": "Delivery"})
    assert response.status_code == expected
    item.refresh_from_db()
    assert item.quantity_on_hand == (6 if expected == 302 else 1)


@pytest.mark.parametrize("role", ["staff", "other_staff"])
@pytest.mark.parametrize("path", ["approve", "reject", "role", "password", "active"])
def test_staff_cannot_administer_users(role, path, as_, world):
    data = {"role": "admin", "new_password": "Another-Pass-2025", "active": "false"}
    assert as_(role).post(f"/users/ST009/{path}/", data).status_code == 403
    world["pending"].refresh_from_db()
    assert world["pending"].approval_status == "pending"
    assert world["pending"].role == "staff"


@pytest.mark.parametrize("path", ["role", "password", "active"])
def test_port_engineer_cannot_use_admin_only_user_actions(path, as_, world):
    data = {"role": "admin", "new_password": "Another-Pass-2025", "active": "false"}
    assert as_("engineer").post(f"/users/{world['staff'].user_id}/{path}/", data).status_code == 403
    world["staff"].refresh_from_db()
    assert world["staff"].role == "staff"
    assert world["staff"].is_active
    assert world["staff"].check_password("Harbour-Pass-2025")
