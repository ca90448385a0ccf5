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


class WorkerHeartbeat(models.Model):
    """One row per background worker process: when it was last seen alive.

    Written by the worker every ``BACKGROUND_HEARTBEAT`` seconds (from a thread,
    so a long task keeps it fresh). A task RUNNING on a worker whose heartbeat
    is older than the lease goes back to be run again (core.engine.recovery);
    the dashboard shows the newest heartbeat (core.background.worker_status)."""

    worker_id = models.CharField(max_length=64, primary_key=True)
    hostname = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True)
    queues = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "worker_heartbeats"
        # worker_status(): the newest heartbeat
        indexes = [models.Index(fields=["-last_seen"], name="worker_heartbeat_seen_idx")]

    def __str__(self):
        return f"{self.worker_id}@{self.hostname}"


class ScheduledRun(models.Model):
    """The guard of the periodic jobs: one row per job and period.

    A scheduler enqueues a job only if it inserted this period's row; a second
    scheduler's insert meets the unique constraint and skips, so each job runs
    once per period however many schedulers run."""

    job = models.CharField(max_length=100)
    period_start = models.DateTimeField()
    enqueued_at = models.DateTimeField(auto_now_add=True)
    scheduler = models.CharField(max_length=100, blank=True)
    task_id = models.CharField(max_length=64, blank=True)

    class Meta:
        db_table = "scheduled_runs"
        constraints = [models.UniqueConstraint(fields=["job", "period_start"], name="scheduled_run_once")]

    def __str__(self):
        return f"{self.job} {self.period_start:%Y-%m-%d %H:%M:%S}"
