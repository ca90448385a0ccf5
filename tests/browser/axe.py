"""axe-core in a Playwright page: :func:`violations` runs the vendored engine
(``tests/browser/vendor/axe-core``, nothing fetched) over the page as it is
and returns the serious and critical violations, each as a short text
naming the rule, the help and the first elements that fail it."""

from __future__ import annotations

from pathlib import Path

AXE_VERSION = "4.14.1"
AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


def violations(page, *, impacts=BLOCKING) -> list[str]:
    """The page's axe violations of the given impacts, as sentences (empty: none).

    The engine is evaluated through the DevTools protocol, not added as a
    ``<script>``, so the page's Content-Security-Policy needs no exception."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    assert page.evaluate("axe.version") == AXE_VERSION
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').split('\\n').slice(0, 3).join(' '))}))"
    )
    return [f"{v['id']} ({v['impact']}): {v['help']} — " + " | ".join(v["nodes"])
            for v in result if v["impact"] in impacts]
