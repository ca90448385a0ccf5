"""The API documentation pages (Swagger UI at /api/docs/, Redoc at /api/redoc/) under the site's
Content-Security-Policy.

Both render drf-spectacular's pages with the vendored sidecar bundles, through templates of ours
that keep no inline script or style (templates/api_docs/, static/api_docs/). Each view adds to the
site-wide policy only what its bundle needs, and nothing for script-src:

- Swagger UI: nothing. Its start-up script comes from a second request to the same view
  (drf-spectacular's split view, ``?script``) instead of an inline block.
- Redoc: its styled-components write <style> elements at run time, which cannot be moved to a
  file; they carry this response's nonce (passed to Redoc by static/api_docs/redoc-init.js), so
  style-src gains that nonce, not 'unsafe-inline'. One stylesheet (perfect-scrollbar's) is written
  while the bundle loads, before Redoc can be given the nonce: style-src allows exactly that text
  by its SHA-256 (REDOC_SCROLLBAR_CSS; a new sidecar release that changes it shows as a violation
  in tests/browser/test_csp.py). Its search index runs in a Web Worker that Redoc creates from a
  blob: URL, hence worker-src blob:. The Redocly logo Redoc links from cdn.redoc.ly stays refused
  (no asset from the internet); Redoc then leaves it out.
"""

from csp.constants import NONCE
from csp.decorators import csp_update
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView


class SwaggerDocsView(SpectacularSwaggerSplitView):
    template_name = "api_docs/swagger_ui.html"


class RedocDocsView(SpectacularRedocView):
    template_name = "api_docs/redoc.html"


# perfect-scrollbar's stylesheet as redoc.standalone.js (drf-spectacular-sidecar 2026.10.1) writes it
REDOC_SCROLLBAR_CSS = "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='"
# an empty <style> element styled-components writes before Redoc hands it the nonce
REDOC_EMPTY_STYLE = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"

swagger_ui = SwaggerDocsView.as_view(url_name="schema")
redoc = csp_update({"style-src": [NONCE, REDOC_SCROLLBAR_CSS, REDOC_EMPTY_STYLE], "worker-src": ["blob:"]})(
    RedocDocsView.as_view(url_name="schema")
)
