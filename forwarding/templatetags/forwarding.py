"""``{% forwarding_status %}``: one line per forwarding sink on the dashboard (nothing when none is set)."""

from django import template

from forwarding import conf, engine, sinks

register = template.Library()


def duration(seconds: float) -> str:
    """Seconds as a person says them: "40 seconds", "1 minute", "5 minutes", "2 hours"."""
    for size, unit in ((3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size or unit == "second":
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return ""


@register.inclusion_tag("forwarding/_status.html")
def forwarding_status():
    if not conf.sink_urls():
        return {"sinks": []}
    try:
        rows = engine.status()
    except sinks.ConfigError as exc:
        return {"sinks": [], "error": str(exc)}
    for row in rows:
        row["lag_text"] = duration(row["lag"])
    return {"sinks": rows, "threshold": duration(conf.lag_alert())}
