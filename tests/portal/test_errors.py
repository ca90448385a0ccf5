"""Error pages: they extend the layout; the 500 page needs neither the
database nor a request."""

from django.template.loader import render_to_string


def test_500_page_renders_without_database_or_request():
    # no ``db`` fixture: any query here would fail the test
    html = render_to_string("errors/500.html")
    assert "Something went wrong" in html
    assert "portal.css" in html
    assert "Log out" not in html


def test_404_page_uses_the_layout(as_, world):
    response = as_("staff").get("/requests/MR999/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Not found" in html
    assert "portal.css" in html
    assert "ST001" in html  # the header still shows who is logged in


def test_403_page_uses_the_layout(as_, world):
    response = as_("staff").get("/users/")
    assert response.status_code == 403
    assert "You are not allowed to do this" in response.content.decode()


def test_every_form_carries_a_csrf_token(as_, world):
    for path in ("/", f"/requests/{world['request'].code}/", "/requests/new/", f"/emergencies/{world['emergency'].code}/",
                 "/users/ST009/", "/profile/", f"/inventory/{world['item'].code}/"):
        html = as_("admin").get(path).content.decode()
        posts = html.count('method="post"')
        assert posts >= 1, path
        assert html.count('name="csrfmiddlewaretoken"') == posts, path
