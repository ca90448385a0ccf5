from django.db import models


class CodeSequence(models.Model):
    """The last number handed out for one code prefix (MR, EMG, INV).

    Rows are locked with SELECT ... FOR UPDATE while a number is taken, so
    codes stay unique under concurrency and are never reused, even after a
    delete."""

    prefix = models.CharField(max_length=10, primary_key=True)
    last_value = models.PositiveBigIntegerField(default=0)

    class Meta:
        db_table = "code_sequences"

    def __str__(self):
        return f"{self.prefix}:{self.last_value}"
