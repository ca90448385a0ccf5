"""What the project adds to the task framework's database backend.

- :mod:`.worker`: ``manage.py run_worker``, the database backend's worker with
  retries (capped exponential back-off, a maximum number of attempts) and a
  heartbeat thread that also recovers stuck tasks.
- :mod:`.heartbeat`: one row per worker with its last-seen time.
- :mod:`.recovery`: a task RUNNING longer than the lease on a worker not seen
  for that long goes back to READY (or fails when out of attempts).
- :mod:`.scheduler`: periodic jobs, enqueued once per period by a unique row
  per job and period (``manage.py run_scheduler``).

Code elsewhere imports :mod:`core.background`, not these modules.
"""
