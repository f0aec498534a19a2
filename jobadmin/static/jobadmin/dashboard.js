// jobadmin: small behaviours without inline handlers (the markup carries data- attributes).
(function () {
  "use strict";
  // "/" focuses the search bar (the explorer's own on its page); "g o/f/w/s" go to overview,
  // failures, workers, search.
  var jumps = { o: "overview", f: "failures", w: "workers", s: "search", t: "tracked", r: "recurring" };
  var pendingG = false;
  document.addEventListener("keydown", function (ev) {
    var el = ev.target;
    if (el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable)) return;
    if (ev.key === "/") {
      var box = document.getElementById("explorer-q") || document.getElementById("query-input") ||
        document.getElementById("jid-input");
      if (box) { ev.preventDefault(); box.focus(); }
      return;
    }
    if (ev.key === "g") { pendingG = true; setTimeout(function () { pendingG = false; }, 800); return; }
    if (pendingG && jumps[ev.key]) {
      var link = document.querySelector('[data-nav="' + jumps[ev.key] + '"]');
      if (link) { window.location = link.getAttribute("href"); }
      pendingG = false;
    }
  });
  // Select-all checkboxes and the count of selected rows for bulk actions; the bulk buttons
  // stay disabled until something is selected (without JavaScript they simply stay enabled).
  function refreshSelection(form) {
    var n = form.querySelectorAll('input[type=checkbox][name=jid]:checked').length;
    form.querySelectorAll("[data-selected-count]").forEach(function (el) { el.textContent = n; });
    form.querySelectorAll("[data-needs-selection]").forEach(function (el) { el.disabled = n === 0; });
  }
  function refreshAll(root) {
    (root || document).querySelectorAll("form.bulk").forEach(refreshSelection);
  }
  document.addEventListener("DOMContentLoaded", function () { refreshAll(document); });
  document.addEventListener("htmx:afterSettle", function (ev) { refreshAll(ev.target); });
  document.addEventListener("htmx:wsAfterMessage", function () { refreshAll(document); });
  document.addEventListener("change", function (ev) {
    var t = ev.target;
    if (t && t.hasAttribute && t.hasAttribute("data-autosubmit") && t.form) { t.form.submit(); return; }
    if (!t || t.type !== "checkbox") return;
    var form = t.closest("form");
    if (!form) return;
    if (t.hasAttribute("data-select-all")) {
      form.querySelectorAll('input[type=checkbox][name=jid]').forEach(function (box) { box.checked = t.checked; });
    }
    refreshSelection(form);
  });
  // Confirm destructive submits (data-confirm on the button or the form).
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var button = ev.submitter;
    var text = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (text && !window.confirm(text)) { ev.preventDefault(); }
  });
  // Copy buttons.
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-copy]");
    if (!b || !navigator.clipboard) return;
    navigator.clipboard.writeText(b.getAttribute("data-copy"));
    b.textContent = "copied";
  });

  // ---------------------------------------------------------------- live updates
  // The page's fragments arrive over the websocket (htmx ws extension, swapped by id). The
  // badge says live / reconnecting / paused / polling; a hidden tab asks the server to pause;
  // while the socket is down the page polls its fragments every few seconds instead.
  var POLL_MS = 5000;
  var live = { socket: null, pollTimer: null, failures: 0, state: "connecting" };
  function badge(state, text) {
    var el = document.getElementById("live-badge");
    if (!el || el.getAttribute("data-live-state") === "static") return;
    live.state = state;
    el.setAttribute("data-live-state", state);
    el.className = "live-badge badge badge-" + ({ live: "live", paused: "paused", polling: "reconnecting",
      reconnecting: "reconnecting", connecting: "reconnecting", offline: "offline", "redis-down": "offline" }[state] || "offline");
    el.textContent = text || state;
  }
  function liveFragments() {
    return Array.prototype.slice.call(document.querySelectorAll("main section[id]")).filter(function (el) {
      // data-no-poll: a fragment the page fills itself (the explorer's results)
      return !el.parentElement.closest("section[id]") && !el.hasAttribute("data-no-poll");
    });
  }
  function pollOnce() {
    var holder = document.getElementById("live-socket");
    if (!holder || document.hidden || !window.htmx) return;
    liveFragments().forEach(function (el) {
      htmx.ajax("GET", holder.getAttribute("data-poll-url"), { target: "#" + el.id, swap: "outerHTML" });
    });
  }
  function startPolling() {
    if (live.pollTimer) return;
    live.pollTimer = setInterval(pollOnce, POLL_MS);
    badge("polling", "polling");
  }
  function stopPolling() {
    if (live.pollTimer) { clearInterval(live.pollTimer); live.pollTimer = null; }
  }
  // Redis away: the server answers polls with 503 (and the socket pushes a "Redis unreachable"
  // badge); the next good answer puts the badge back.
  document.addEventListener("htmx:responseError", function (ev) {
    if (ev.detail && ev.detail.xhr && ev.detail.xhr.status === 503) badge("redis-down", "Redis unreachable");
  });
  document.addEventListener("htmx:afterRequest", function (ev) {
    if (live.state === "redis-down" && ev.detail && ev.detail.successful) badge(live.pollTimer ? "polling" : "live");
  });
  document.addEventListener("htmx:wsConnecting", function () {
    if (live.state !== "polling") badge("connecting", "connecting");
  });
  document.addEventListener("htmx:wsOpen", function (ev) {
    live.socket = ev.detail.socketWrapper;
    live.failures = 0;
    stopPolling();
    if (document.hidden) { live.socket.send(JSON.stringify({ pause: true })); badge("paused", "paused"); }
    else badge("live", "live");
  });
  document.addEventListener("htmx:wsClose", function (ev) {
    live.socket = null;
    live.failures += 1;
    var code = ev.detail && ev.detail.event ? ev.detail.event.code : 0;
    if (code === 4403 || code === 4400) { badge("offline", "not live"); startPolling(); return; }
    badge("reconnecting", "reconnecting");
    if (live.failures >= 2) startPolling();
    // the extension retries abnormal closes itself; retry the others too, with backoff
    if ([1006, 1011, 1012, 1013].indexOf(code) < 0 && ev.detail && ev.detail.socketWrapper) {
      var wrapper = ev.detail.socketWrapper;
      setTimeout(function () { wrapper.reconnect(); }, Math.min(30000, 500 * Math.pow(2, live.failures)));
    }
  });
  document.addEventListener("visibilitychange", function () {
    if (!live.socket) return;
    live.socket.send(JSON.stringify({ pause: document.hidden }));
    badge(document.hidden ? "paused" : "live", document.hidden ? "paused" : "live");
  });
  // Never replace a fragment under the operator's hands: a table with selected rows, or one
  // holding the focused field, keeps its state until the selection is cleared.
  document.addEventListener("htmx:oobBeforeSwap", function (ev) {
    var target = ev.detail.target;
    if (!target) return;
    var busy = target.querySelector("input[type=checkbox][name=jid]:checked") ||
      (document.activeElement && document.activeElement !== document.body && target.contains(document.activeElement) &&
       /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName));
    if (busy) { ev.detail.shouldSwap = false; target.setAttribute("data-stale", "1"); }
  });
  document.addEventListener("htmx:oobAfterSwap", function (ev) {
    window.__qeLastSwap = Date.now();
  });
})();
