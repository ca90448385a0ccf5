"""System check: every URL in AUDIT_FORWARD_SINKS is a usable sink (said without its credentials)."""

from django.core import checks

from forwarding import conf, sinks


@checks.register()
def check_sinks(app_configs=None, **kwargs):
    errors = []
    names = set()
    for url in conf.sink_urls():
        try:
            sink = sinks.parse(url)
        except sinks.ConfigError as exc:
            errors.append(checks.Error(str(exc), id="forwarding.E001"))
            continue
        if sink.name in names:
            errors.append(checks.Error(f"AUDIT_FORWARD_SINKS names {sink.name} twice; the two would share one "
                                       "cursor.", id="forwarding.E002"))
        names.add(sink.name)
    return errors
