"""Error pages: JSON envelopes under /api/, HTML elsewhere."""

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


def bad_request(request, exception=None):
    if _wants_json(request):
        return JsonResponse(error_body(status_code=400, message="Bad request."), status=400)
    return render(request, "errors/400.html", status=400)
