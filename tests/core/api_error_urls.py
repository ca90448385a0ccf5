"""The project's URLs plus views that fail on purpose, for tests of error handling."""

from django.db import connection
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.http import require_POST

from marine_center.urls import handler400, handler403, handler404, handler500  # noqa: F401
from marine_center.urls import urlpatterns as project


def boom(request):
    with connection.cursor() as cursor:  # the request used the database before failing
        cursor.execute("SELECT 1")
    raise RuntimeError("a bug in a view")


@require_POST
def post_only(request):
    return HttpResponse("ok")


urlpatterns = [
    path("api/test-boom/", boom),
    path("api/test-post-only/", post_only),
    path("test-boom/", boom),
    *project,
]
