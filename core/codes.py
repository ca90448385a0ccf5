"""Server-assigned entity codes: MR001, EMG001, INV001 ... MR1000."""

from django.db import IntegrityError, transaction

from core.models import CodeSequence


def format_code(prefix: str, number: int) -> str:
    return f"{prefix}{number:03d}"


@transaction.atomic
def next_code(prefix: str) -> str:
    """Take the next number for ``prefix``; call it inside the transaction
    that creates the row so an aborted create does not burn a lock for long."""
    seq = CodeSequence.objects.select_for_update().filter(prefix=prefix).first()
    if seq is None:
        try:
            with transaction.atomic():
                CodeSequence.objects.create(prefix=prefix, last_value=0)
        except IntegrityError:
            pass  # another transaction created it first
        seq = CodeSequence.objects.select_for_update().get(prefix=prefix)
    seq.last_value += 1
    CodeSequence.objects.filter(prefix=prefix).update(last_value=seq.last_value)
    return format_code(prefix, seq.last_value)
