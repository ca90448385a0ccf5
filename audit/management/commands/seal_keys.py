"""``manage.py seal_keys``: the Ed25519 keys that sign seals and export packs."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.operations import signing


class Command(BaseCommand):
    help = (
        "List the public keys that have signed seals (key id, first seal), write them as one PEM key ring "
        "for verifiers (--public-keys PATH, '-' for standard output), or create a new private key file "
        "(--generate PATH; never overwrites). Rotation: generate a new key, point AUDIT_SIGNING_KEY_FILE at "
        "it; it signs from the next seal on and the old key stays listed."
    )

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--generate", metavar="PATH", help="Create a new Ed25519 private key file (mode 0600).")
        group.add_argument("--public-keys", metavar="PATH",
                           help="Write every listed public key, and the configured key's, as PEM.")

    def handle(self, *args, generate, public_keys, **options):
        if generate:
            path = Path(generate)
            if not path.parent.is_dir():
                raise CommandError(f"--generate: directory {str(path.parent)!r} does not exist.")
            try:
                signing.write_private_key(path)
            except FileExistsError:
                raise CommandError(f"--generate: {path} exists; a key file is never overwritten.") from None
            public = signing.load_public_key_of(path)
            self.stdout.write(self.style.SUCCESS(
                f"Created private key {path} (key id {public.key_id}). Set AUDIT_SIGNING_KEY_FILE={path}; "
                "it signs from the next seal on."))
            return
        keys = {k.key_id: k for k in signing.registered_keys()}
        try:
            active = signing.signer()
        except (signing.SigningKeyMissing, signing.SigningKeyInvalid) as exc:
            active = None
            self.stderr.write(f"No usable signing key configured: {exc}")
        if public_keys:
            ring = list(keys.values())
            if active is not None and active.key_id not in keys:
                ring.append(signing.PublicKey(active.key_id, active.private_key.public_key(), active.public_pem))
            if not ring:
                raise CommandError("No public key to write: no seal has been signed and no key is configured.")
            text = "".join(k.pem for k in ring)
            if public_keys == "-":
                self.stdout.write(text, ending="")
            else:
                Path(public_keys).write_text(text, encoding="ascii")
                self.stdout.write(self.style.SUCCESS(f"Wrote {len(ring)} public key(s) to {public_keys}."))
            return
        from audit.models import AuditSigningKey

        rows = list(AuditSigningKey.objects.order_by("first_seq"))
        for row in rows:
            current = " (configured)" if active is not None and row.key_id == active.key_id else ""
            self.stdout.write(f"{row.key_id}  signs from seal #{row.first_seq}{current}")
        if active is not None and active.key_id not in keys:
            self.stdout.write(f"{active.key_id}  configured, signs from the next seal on ({active.source})")
        self.stdout.write(f"{len(rows)} key(s) listed.")
