"""Error pages: JSON envelopes under /api/, HTML elsewhere."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.shortcuts import render

from marine_center.api import error_body


def _wants_json(request):
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    if _wants_json(request):
        return JsonResponse(error_body(status_code=404, message="Not found."), status=404)
    return render(request, "errors/404.html", status=404)


def forbidden(request, exception=None):
    if _wants_json(request):
        return JsonResponse(error_body(status_code=403, message="You do not have permission to perform this action."), status=403)
    return render(request, "errors/403.html", status=403)


def server_error(request):
    if _wants_json(request):
        return JsonResponse({"success": False, "error": {"code": "server_error", "message": "Internal server error."}}, status=500)
    return render(request, "errors/500.html", status=500)


def too_large(request):
    """413: a body over DATA_UPLOAD_MAX_MEMORY_SIZE (Django raises RequestDataTooBig, a
    SuspiciousOperation it would answer as a plain 400)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if _wants_json(request):
        return JsonResponse(error_body(status_code=413, message=f"The request body is too large: at most {limit} bytes."),
                            status=413)
    return render(request, "errors/413.html", {"limit": limit}, status=413)


def bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        return too_large(request)
    if _wants_json(request):
        return JsonResponse(error_body(status_code=400, message="Bad request."), status=400)
    return render(request, "errors/400.html", status=400)
