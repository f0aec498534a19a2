// jobadmin: small behaviours without inline handlers (the markup carries data- attributes).
(function () {
  "use strict";
  // "/" focuses the jid box; "g o/f/w/q" go to overview, failures, workers, search.
  var jumps = { o: "overview", f: "failures", w: "workers", s: "search", t: "tracked", r: "recurring" };
  var pendingG = false;
  document.addEventListener("keydown", function (ev) {
    var el = ev.target;
    if (el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable)) return;
    if (ev.key === "/") {
      var box = document.getElementById("jid-input");
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
})();
