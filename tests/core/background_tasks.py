"""Tasks used by the background engine's tests (importable by worker subprocesses)."""

import time
from pathlib import Path

from core.background import retry, task


@task(takes_context=True)
def flaky(context, fail_times: int) -> int:
    """Fails on its first ``fail_times`` attempts."""
    if context.attempt <= fail_times:
        raise RuntimeError(f"attempt {context.attempt} fails on purpose")
    return context.attempt


@retry(max_attempts=5, base_delay=60, max_delay=600)
@task()
def always_fails() -> None:
    raise ValueError("never works")


@task(takes_context=True)
def sleepy_once(context, marker: str) -> int:
    """The first attempt writes ``marker`` and sleeps (to be killed); a later one returns at once."""
    path = Path(marker)
    if context.attempt == 1:
        path.write_text("started")
        time.sleep(120)
    path.write_text(f"done on attempt {context.attempt}")
    return context.attempt
