// jobadmin explorer: the search bar's completions, sorting the rows of a results table, and the
// JSON check of the job form. No inline handlers: the markup carries data- attributes.
(function () {
  "use strict";
  var VALUE_KINDS = { queue: "queue", "class": "class", klass: "class", tag: "tag", worker: "worker", state: "state" };

  // ---------------------------------------------------------------- completions
  // An input with data-query-bar completes the term under the caret (a qualifier name, or the
  // value of queue:, class:, tag:, worker:, state:); one with data-suggest="class" completes its
  // whole value. Suggestions come from data-suggest-url (?kind=&prefix=).
  function termAt(input) {
    var text = input.value, caret = input.selectionStart === null ? text.length : input.selectionStart;
    var start = caret;
    while (start > 0 && !/\s/.test(text.charAt(start - 1))) start -= 1;
    var term = text.slice(start, caret);
    if ((term.match(/"/g) || []).length % 2 === 1 && term.indexOf(':"') < 0) return null;   // inside quotes
    return { start: start, end: caret, text: term };
  }
  function wanted(input) {
    if (input.getAttribute("data-suggest") === "class") {
      return { kind: "class", prefix: input.value, replace: function (v) { input.value = v; } };
    }
    var t = termAt(input);
    if (!t) return null;
    var colon = t.text.indexOf(":");
    if (colon < 0) {
      if (!t.text) return null;
      return { kind: "qualifier", prefix: t.text, replace: function (v) { splice(input, t, v, false); } };
    }
    var key = t.text.slice(0, colon), kind = VALUE_KINDS[key];
    if (!kind) return null;
    var prefix = t.text.slice(colon + 1).replace(/^"/, "");
    return { kind: kind, prefix: prefix, replace: function (v) { splice(input, t, key + ":" + quote(v), true); } };
  }
  function quote(v) { return /[\s"\\]/.test(v) || v === "" ? '"' + v.replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"' : v; }
  function splice(input, t, text, space) {
    var rest = input.value.slice(t.end);
    if (space && !/^\s/.test(rest)) text += " ";
    input.value = input.value.slice(0, t.start) + text + rest;
    var at = t.start + text.length;
    input.setSelectionRange(at, at);
  }
  function listFor(input) {
    var id = input.id + "-suggest", ul = document.getElementById(id);
    if (!ul) {
      ul = document.createElement("ul");
      ul.id = id;
      ul.className = "suggest";
      ul.setAttribute("role", "listbox");
      ul.hidden = true;
      input.insertAdjacentElement("afterend", ul);
      input.setAttribute("role", "combobox");
      input.setAttribute("aria-controls", id);
      input.setAttribute("aria-autocomplete", "list");
      input.setAttribute("aria-expanded", "false");
    }
    return ul;
  }
  function close(input) {
    var ul = listFor(input);
    ul.hidden = true;
    ul.textContent = "";
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }
  function show(input, items, want) {
    var ul = listFor(input);
    ul.textContent = "";
    items.forEach(function (item, i) {
      var li = document.createElement("li");
      li.id = ul.id + "-" + i;
      li.setAttribute("role", "option");
      li.textContent = item;
      li.addEventListener("mousedown", function (ev) { ev.preventDefault(); accept(input, item, want); });
      ul.appendChild(li);
    });
    ul.hidden = items.length === 0;
    input.setAttribute("aria-expanded", items.length ? "true" : "false");
    input.__want = want;
  }
  function accept(input, item, want) {
    (wanted(input) || want).replace(item);   // the term as it is now (typing may have gone on)
    close(input);
    input.focus();
    if (want.kind === "qualifier") refresh(input);
  }
  var timers = {};
  function refresh(input) {
    clearTimeout(timers[input.id]);
    timers[input.id] = setTimeout(function () {
      var want = wanted(input), url = input.getAttribute("data-suggest-url");
      if (!want || !url) { close(input); return; }
      var query = url + "?" + new URLSearchParams({ kind: want.kind, prefix: want.prefix }).toString();
      fetch(query, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { items: [] }; })
        .then(function (body) {
          var items = (body.items || []).filter(function (i) { return i !== want.prefix; });
          if (document.activeElement === input) show(input, items, want);
        })
        .catch(function () { close(input); });
    }, 120);
  }
  function move(input, step) {
    var ul = listFor(input), options = ul.querySelectorAll("li");
    if (ul.hidden || !options.length) return false;
    var current = ul.querySelector("li.active"), i = Array.prototype.indexOf.call(options, current) + step;
    if (i < 0) i = options.length - 1;
    if (i >= options.length) i = 0;
    if (current) { current.classList.remove("active"); current.removeAttribute("aria-selected"); }
    options[i].classList.add("active");
    options[i].setAttribute("aria-selected", "true");
    input.setAttribute("aria-activedescendant", options[i].id);
    return true;
  }
  function completing(el) {
    return el && el.tagName === "INPUT" && (el.hasAttribute("data-query-bar") || el.getAttribute("data-suggest") === "class");
  }
  document.addEventListener("input", function (ev) { if (completing(ev.target)) refresh(ev.target); });
  document.addEventListener("focusout", function (ev) { if (completing(ev.target)) close(ev.target); });
  document.addEventListener("keydown", function (ev) {
    var input = ev.target;
    if (!completing(input)) return;
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      if (move(input, ev.key === "ArrowDown" ? 1 : -1)) ev.preventDefault();
    } else if (ev.key === "Enter" || ev.key === "Tab") {
      var active = listFor(input).querySelector("li.active");
      if (active && !listFor(input).hidden) { ev.preventDefault(); accept(input, active.textContent, input.__want); }
    } else if (ev.key === "Escape") {
      close(input);
    }
  });

  // ---------------------------------------------------------------- sorting the rows shown
  // A table with data-sortable: a header's button sorts the loaded rows by that column's
  // data-sort values (numbers as numbers), ascending then descending; rows streamed in later
  // are sorted the same way.
  function sortRows(table) {
    var key = table.getAttribute("data-sorted-by");
    if (!key) return;
    var th = table.querySelector('th[data-sort-key="' + key + '"]');
    var col = Array.prototype.indexOf.call(th.parentElement.children, th);
    var dir = table.getAttribute("data-sort-dir") === "desc" ? -1 : 1;
    var body = table.tBodies[0];
    var rows = Array.prototype.filter.call(body.rows, function (r) { return r.hasAttribute("data-jid"); });
    function value(r) { var c = r.cells[col]; return c ? c.getAttribute("data-sort") || "" : ""; }
    rows.sort(function (a, b) {
      var x = value(a), y = value(b), nx = parseFloat(x), ny = parseFloat(y);
      if (x !== "" && y !== "" && isFinite(nx) && isFinite(ny) && String(nx) === x.trim() && String(ny) === y.trim()) {
        return (nx - ny) * dir;
      }
      return x < y ? -dir : x > y ? dir : 0;
    });
    var tail = body.querySelector("#explorer-more");
    rows.forEach(function (r) { body.insertBefore(r, tail); });
  }
  document.addEventListener("click", function (ev) {
    var button = ev.target.closest && ev.target.closest("table[data-sortable] th[data-sort-key] button.sort");
    if (!button) return;
    var th = button.parentElement, table = th.closest("table"), key = th.getAttribute("data-sort-key");
    var dir = table.getAttribute("data-sorted-by") === key && table.getAttribute("data-sort-dir") === "asc" ? "desc" : "asc";
    table.setAttribute("data-sorted-by", key);
    table.setAttribute("data-sort-dir", dir);
    table.querySelectorAll("th[data-sort-key]").forEach(function (h) { h.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
    sortRows(table);
  });
  document.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll("table[data-sortable][data-sorted-by]").forEach(sortRows);
  });

  // ---------------------------------------------------------------- the job form's JSON
  // A textarea with data-json says at once when its text is not JSON (the server checks again).
  document.addEventListener("input", function (ev) {
    var area = ev.target;
    if (!area || area.tagName !== "TEXTAREA" || !area.hasAttribute("data-json")) return;
    var note = document.getElementById(area.getAttribute("aria-describedby"));
    try {
      JSON.parse(area.value);
      area.removeAttribute("aria-invalid");
      if (note) { note.textContent = ""; note.hidden = true; }
    } catch (err) {
      area.setAttribute("aria-invalid", "true");
      if (note) { note.textContent = "not JSON yet: " + err.message; note.hidden = false; }
    }
  });
})();
