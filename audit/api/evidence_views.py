"""Evidence for outsiders: the seals' public keys and signed export packs (admin, port engineer).

- ``GET /api/realtime/seals/public-key``: the key that signs new seals, PEM text;
- ``GET /api/realtime/seals/public-keys``: every key that has signed, with the
  first seal it signed (JSON; the PEM of each);
- ``GET /api/realtime/export-pack``: a signed export pack (zip) of the
  audit_trail rows selected by the export's filters plus ``from``/``to``
  (:class:`audit.api.filters.PackFilter`), verified offline with
  ``python -m audit.verify_pack``.

Each is recorded as a read of audit data before it is answered.
"""

from __future__ import annotations

import tempfile

from django.http import FileResponse, HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from audit import looks
from audit.api.filters import PackFilter
from audit.api.views import _ERRORS, _AuditReadView, _trail_filters
from audit.models import AuditSigningKey
from audit.operations import packs, signing
from core.fields import iso_ms

PEM_TYPE = "application/x-pem-file"
SPOOL_BYTES = 8 * 1024 * 1024  # packs up to this size stay in memory, larger ones go to a temporary file


class SigningUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "No seal signing key is configured on this server, so nothing can be signed."
    default_code = "signing_unavailable"


def _current_key() -> signing.PublicKey:
    try:
        return signing.current_public_key()
    except (signing.SigningKeyMissing, signing.SigningKeyInvalid) as exc:
        raise SigningUnavailable() from exc


class SealPublicKeyView(_AuditReadView):
    """The public key that signs new seals, as PEM text."""

    def perform_content_negotiation(self, request, force=False):
        return JSONRenderer(), JSONRenderer.media_type  # the body is PEM; errors are JSON envelopes

    @extend_schema(
        operation_id="realtime_seal_public_key",
        tags=["realtime audit"],
        responses={(200, PEM_TYPE): OpenApiResponse(OpenApiTypes.STR, description="PEM (SubjectPublicKeyInfo) "
                   "of the Ed25519 key; header X-Key-Id names it."),
                   **{k: v for k, v in _ERRORS.items() if k != 400}},
    )
    def get(self, request):
        key = _current_key()
        looks.record_read(request, "Viewed seal public key", {"key_id": key.key_id})
        response = HttpResponse(key.pem, content_type=f"{PEM_TYPE}; charset=us-ascii")
        response["X-Key-Id"] = key.key_id
        response["Content-Disposition"] = f'inline; filename="audit-seal-{key.key_id[:12]}.pem"'
        return response


class SealPublicKeysView(_AuditReadView):
    """Every public key that has signed seals, oldest first."""

    @extend_schema(
        operation_id="realtime_seal_public_keys",
        tags=["realtime audit"],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="success, current_key_id, keys[key_id, "
                   "first_seq, created_at, public_key]"), **{k: v for k, v in _ERRORS.items() if k != 400}},
    )
    def get(self, request):
        rows = list(AuditSigningKey.objects.order_by("first_seq"))
        try:
            current = signing.current_public_key().key_id
        except (signing.SigningKeyMissing, signing.SigningKeyInvalid):
            current = None
        looks.record_read(request, "Viewed seal public keys", {"keys": len(rows)})
        return Response({
            "success": True,
            "current_key_id": current,
            "keys": [{"key_id": r.key_id, "first_seq": r.first_seq, "created_at": iso_ms(r.created_at),
                      "public_key": r.public_key} for r in rows],
        })


class ExportPackView(_AuditReadView):
    """A signed export pack (zip) of the selected audit_trail rows."""

    def perform_content_negotiation(self, request, force=False):
        return JSONRenderer(), JSONRenderer.media_type  # the body is a zip; errors are JSON envelopes

    @extend_schema(
        operation_id="realtime_export_pack",
        tags=["realtime audit"],
        parameters=[
            *_trail_filters(),
            OpenApiParameter("from", OpenApiTypes.DATETIME, description="Start (ISO 8601; UTC without a zone), "
                             "instead of hours."),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="End, excluded (default now)."),
        ],
        responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The pack: rows "
                   "(.jsonl with inclusion proofs, .csv), seals.json, keys/, dossier/, manifest.json and "
                   "manifest.sig. Verify with python -m audit.verify_pack PACK --public-key KEY.pem."),
                   **_ERRORS},
    )
    def get(self, request):
        filterset = PackFilter(data=request.query_params)
        filterset.cleaned()
        selection = filterset.selection()
        _current_key()
        looks.record_read(request, "Exported audit pack", {**filterset.describe(), "format": "pack"})
        name = f"audit-pack_{timezone.now():%Y%m%dT%H%M%SZ}.zip"
        body = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        try:
            packs.write_pack(body, selection=selection, created_by=request.user.user_id, name=name)
        except packs.PackTooLarge as exc:
            body.close()
            raise exceptions.ValidationError({"hours": [str(exc)]}) from None
        except (signing.SigningKeyMissing, signing.SigningKeyInvalid) as exc:
            body.close()
            raise SigningUnavailable() from exc
        body.seek(0)
        response = FileResponse(body, as_attachment=True, filename=name, content_type="application/zip")
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response
