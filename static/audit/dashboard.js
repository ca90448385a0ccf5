/* Live dashboard: listens to the SSE stream (/api/realtime/stream) and, on each
 * new row, refreshes from /api/realtime/dashboard (tiles) and /dashboard/data/ (charts,
 * latest activities and open emergencies as sentences, open critical events; an
 * "acknowledged" message drops one from the open list). Each refresh carries the page's
 * look token, so it is not logged as a new read (audit.looks). An event's Acknowledge form is posted to the API. Without the stream (no
 * EventSource, or the connection is down) it polls those every few seconds.
 * It updates the page in place. Recorded data is attacker-controlled: it is only ever set
 * with textContent / setAttribute, never parsed as HTML. No library, no CDN. */
(function () {
  "use strict";
  var script = document.currentScript;
  var seconds = Math.max(2, parseInt(script.getAttribute("data-poll-seconds"), 10) || 5);
  var apiUrl = script.getAttribute("data-api");
  var extraUrl = script.getAttribute("data-extra");
  var streamUrl = script.getAttribute("data-stream");
  var streaming = false;
  var SLOW = 30;  // seconds between refreshes while the stream is up (chart time axis)
  var statusEl = document.getElementById("live-status");
  var updatedEl = document.getElementById("live-updated");
  var timer = null;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function hms(iso) { return typeof iso === "string" && iso.length >= 19 ? iso.slice(11, 19) : ""; }

  function truncate(text, n) {
    text = text == null ? "" : String(text);
    return text.length > n ? text.slice(0, n - 1) + "\u2026" : text;
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); });
  }

  function setTiles(metrics) {
    Object.keys(metrics || {}).forEach(function (key) {
      var node = document.querySelector('[data-metric="' + key + '"]');
      if (!node) return;
      var value = String(metrics[key]);
      if (node.textContent !== value) {
        node.textContent = value;
        var tile = node.closest(".tile");
        if (tile) { tile.classList.add("changed"); setTimeout(function () { tile.classList.remove("changed"); }, 1500); }
      }
    });
  }

  function replaceList(list, items, render, emptyText) {
    var fresh = document.createDocumentFragment();
    if (!items.length) fresh.appendChild(el("li", "empty", emptyText));
    items.forEach(function (item) { fresh.appendChild(render(item)); });
    while (list.firstChild) list.removeChild(list.firstChild);
    list.appendChild(fresh);
  }

  function timeNode(text, iso, exact) {
    var t = el("time", null, text || hms(iso));
    t.setAttribute("datetime", iso || "");
    if (exact) t.setAttribute("title", exact);
    return t;
  }

  function setLatest(items) {
    var list = document.getElementById("latest-activities");
    if (!list) return;
    var before = list.firstElementChild ? list.firstElementChild.getAttribute("data-key") : null;
    replaceList(list, items, function (a) {
      var li = el("li");
      li.setAttribute("data-key", a.timestamp + "|" + a.sentence);
      var when = el("span", "feed-when");
      when.appendChild(timeNode(a.time, a.timestamp, a.exact));
      li.appendChild(when);
      li.appendChild(el("span", "feed-what", truncate(a.sentence, 240)));
      return li;
    }, "No activity yet.");
    var first = list.firstElementChild;
    if (before !== null && first && first.getAttribute("data-key") !== before) first.classList.add("fresh");
  }

  function localLink(url, child) {
    if (url && url.charAt(0) === "/" && url.charAt(1) !== "/") {
      var a = el("a"); a.setAttribute("href", url); a.appendChild(child); return a;
    }
    return child;
  }

  function setEmergencies(items) {
    var list = document.getElementById("open-emergencies");
    if (!list) return;
    replaceList(list, items, function (e) {
      var li = el("li");
      li.appendChild(localLink(e.url, el("code", null, e.code)));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", "feed-what", e.sentence));
      li.appendChild(el("span", "feed-age", "open for " + e.age));
      return li;
    }, "No open emergency.");
  }

  function csrfToken() {
    var input = document.querySelector('input[name="csrfmiddlewaretoken"]');
    if (input) return input.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function ackForm(e) {
    var form = el("form", "ack-form");
    form.setAttribute("method", "post");
    if (e.acknowledge_url && e.acknowledge_url.charAt(0) === "/" && e.acknowledge_url.charAt(1) !== "/") {
      form.setAttribute("action", e.acknowledge_url);
    }
    form.setAttribute("data-event", String(e.id));
    var token = el("input"); token.type = "hidden"; token.name = "csrfmiddlewaretoken"; token.value = csrfToken();
    var next = el("input"); next.type = "hidden"; next.name = "next"; next.value = window.location.pathname;
    var label = el("label", "visually-hidden", "Note"); label.setAttribute("for", "ack-note-" + e.id);
    var note = el("input"); note.type = "text"; note.name = "note"; note.id = "ack-note-" + e.id;
    note.maxLength = 2000; note.placeholder = "Note (what is being done)";
    var button = el("button", "button small", "Acknowledge"); button.type = "submit";
    [token, next, label, note, button].forEach(function (node) { form.appendChild(node); });
    return form;
  }

  function setCritical(items) {
    var list = document.getElementById("critical-events");
    if (!list) return;
    var typing = list.querySelector("input[name=note]:focus");
    if (typing && typing.value) return;  // do not wipe a note being written; the next refresh will do
    replaceList(list, items, function (e) {
      var li = el("li");
      li.setAttribute("data-event", String(e.id));
      var when = el("span", "feed-when");
      when.appendChild(timeNode(e.time, e.timestamp, e.exact));
      li.appendChild(when);
      li.appendChild(el("span", "badge badge-sev-critical", e.label || e.event_type));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(localLink(e.url, el("code", null, e.entity_id)));
      if (e.age) li.appendChild(el("span", "feed-age", "open for " + e.age));
      if (e.sentence) li.appendChild(el("span", "feed-details", truncate(e.sentence, 240)));
      li.appendChild(ackForm(e));
      return li;
    }, "No open critical event in the last 24 hours.");
  }

  // Acknowledge through the API (the form posts to the portal without the script)
  var ackApi = script.getAttribute("data-ack-api");
  var criticalList = document.getElementById("critical-events");
  if (criticalList && ackApi && window.fetch) {
    criticalList.addEventListener("submit", function (ev) {
      var form = ev.target;
      var id = form.getAttribute("data-event");
      if (!id || !/^[0-9]+$/.test(id)) return;
      ev.preventDefault();
      var note = form.querySelector("input[name=note]");
      var button = form.querySelector("button");
      if (button) button.disabled = true;
      fetch(ackApi + id + "/acknowledge", {
        method: "POST", credentials: "same-origin", cache: "no-store",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ note: note ? note.value : "" })
      }).then(function (r) {
        if (r.ok || r.status === 409) {
          var li = form.closest("li"); if (li && li.parentNode) li.parentNode.removeChild(li);
          if (!criticalList.querySelector("li")) criticalList.appendChild(el("li", "empty", "No open critical event in the last 24 hours."));
          poll();
        } else { form.submit(); }  // let the portal say what went wrong
      }, function () { form.submit(); });
    });
  }

  function setChart(name, data) {
    var fig = document.querySelector('[data-chart="' + name + '"]');
    if (!fig || !data) return;
    var unit = name === "errors" ? "error and critical events" : "activities";
    data.bars.forEach(function (bar, i) {
      var rect = fig.querySelector('rect[data-i="' + i + '"]');
      if (rect) {
        rect.setAttribute("y", bar.y);
        rect.setAttribute("height", bar.height);
        rect.classList.toggle("nonzero", bar.count > 0);
        var title = rect.querySelector("title");
        if (title) title.textContent = bar.label + ": " + bar.count + " " + unit;
      }
      var row = fig.querySelector('tr[data-i="' + i + '"]');
      if (row && row.cells.length === 2) { row.cells[0].textContent = bar.label; row.cells[1].textContent = String(bar.count); }
    });
    var every = name === "errors" ? 4 : 10;
    fig.querySelectorAll("[data-axis]").forEach(function (node) {
      var bar = data.bars[parseInt(node.getAttribute("data-axis"), 10) * every];
      if (bar) node.textContent = bar.label;
    });
    var max = fig.querySelector("[data-chart-max]"); if (max) max.textContent = String(data.maximum);
    var desc = fig.querySelector("[data-chart-desc]"); if (desc) desc.textContent = data.description;
    var svg = fig.querySelector("svg[data-chart-label]");
    if (svg) svg.setAttribute("aria-label", svg.getAttribute("data-chart-label") + ": " + data.description);
  }

  function stamp(iso, ok) {
    if (updatedEl && iso) { updatedEl.textContent = hms(iso); updatedEl.setAttribute("datetime", iso); }
    if (statusEl) statusEl.classList.toggle("stale", !ok);
  }

  function applyDashboard(body) {
    if (!body || !body.success) return;
    setTiles(body.metrics);
    stamp(body.timestamp, true);
  }

  function poll() {
    var main = getJSON(apiUrl).then(applyDashboard);
    var extra = getJSON(extraUrl).then(function (body) {
      if (!body || !body.success) return;
      setChart("activity", body.charts.activity);
      setChart("errors", body.charts.errors);
      setCritical(body.critical_events || []);
      setLatest(body.latest_activities || []);
      setEmergencies(body.open_emergencies || []);
    });
    return Promise.all([main, extra]).catch(function () { stamp(null, false); });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(function () { poll().then(schedule, schedule); }, (streaming ? SLOW : seconds) * 1000);
  }

  var pending = null;
  function soon() {  // many rows in a burst -> one refresh
    if (pending) return;
    pending = setTimeout(function () { pending = null; poll(); }, 300);
  }

  if (streamUrl && window.EventSource) {
    // the server ends each stream after a while; EventSource reconnects with Last-Event-ID
    var source = new EventSource(streamUrl, { withCredentials: true });
    ["activity", "audit", "event", "acknowledged"].forEach(function (kind) { source.addEventListener(kind, soon); });
    source.onopen = function () { streaming = true; if (statusEl) statusEl.setAttribute("data-mode", "stream"); };
    source.onerror = function () {
      streaming = false;
      if (statusEl) statusEl.setAttribute("data-mode", "poll");
      if (source.readyState === EventSource.CLOSED) source = null;
      schedule();
    };
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { clearTimeout(timer); timer = null; }
    else if (timer === null) { poll().then(schedule, schedule); }
  });
  window.auditDashboard = { poll: poll };  // for tests and a manual refresh
  schedule();
})();
