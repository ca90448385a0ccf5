/* Starts Redoc on /api/redoc/ (instead of drf-spectacular's inline script). Redoc's styles are
 * <style> elements written at run time; they get this script's nonce, the one the response's
 * Content-Security-Policy allows for style-src. */
(function () {
  "use strict";
  var nonce = document.currentScript ? document.currentScript.nonce : "";
  var container = document.getElementById("redoc-container");
  Redoc.init(container.getAttribute("data-schema-url"), { nonce: nonce }, container);
})();
