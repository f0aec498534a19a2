"""The jobs explorer's query bar: ``state:failed queue:emails class:app.jobs.Send tag:vip
worker:web-1 data.user.id:7 text:"timeout" since:1h`` -> the arguments of ``client.jobs.find``.

Grammar: terms separated by spaces. A term is ``qualifier:value`` or a bare word; a value (or a
bare word) may be double-quoted to hold spaces (``tag:"has space"``; ``\\"`` and ``\\\\`` inside
quotes). Qualifiers:

- ``state:`` one of waiting, scheduled, depends, throttled, running, stalled, failed, complete;
- ``queue:``, ``tag:``, ``worker:`` a name (everything after the first colon: ``queue:a:b`` is
  the queue ``a:b``);
- ``class:`` (or ``klass:``) a class name, or a prefix ending in ``*`` (``class:app.billing.*``);
- ``data.<path>:`` equality at a dotted path of the job's data: an unquoted value is JSON when it
  parses as JSON (``7``, ``true``, ``null``, ``[1,2]``), else text; a quoted value is always
  text (``data.id:"7"`` is the string 7);
- ``text:`` a substring of the data's JSON; bare words (joined by single spaces) mean the same;
- ``since:`` / ``until:`` the job's last change: a duration ago (``90s``, ``15m``, ``2h``,
  ``7d``, ``1w``, ``1h30m``), a date or time (``2026-12-01``, ``2026-12-01T08:00``, UTC unless
  it says otherwise) or epoch seconds.

Each qualifier may appear once (several ``data.`` paths are fine). A query that cannot be read
raises :class:`QueryError` saying where and why; nothing is sent to Redis. A parsed
:class:`Query` gives ``find_kwargs()`` for ``client.jobs.find`` and ``text()``, its canonical
form (for the URL), so a later "act on all N matching" can page through the same ``find``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

STATES = ("waiting", "scheduled", "depends", "throttled", "running", "stalled", "failed", "complete")
QUALIFIERS = ("state", "queue", "class", "tag", "worker", "data.", "text", "since", "until")
"""The qualifiers, as the query bar suggests them (``klass`` is an alias of ``class``)."""
USAGE = "state:, queue:, class:, tag:, worker:, data.<path>:, text:, since:, until:"
_ALIASES = {"klass": "class"}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)([smhdw]))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
MAX_LENGTH = 2000


class QueryError(ValueError):
    """A query the explorer cannot read: ``message`` says why, ``position`` where (0-based)."""

    def __init__(self, message: str, position: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Term:
    """One term of a query: its qualifier ('' for a bare word), its value, whether the value was
    quoted, and where the term starts."""

    key: str
    value: str
    quoted: bool
    position: int


@dataclass
class Query:
    """A parsed query (every field optional)."""

    state: str | None = None
    queue: str | None = None
    klass: str | None = None
    tag: str | None = None
    worker: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    since: float | None = None
    until: float | None = None
    since_text: str = ""
    until_text: str = ""

    @property
    def empty(self) -> bool:
        """No filter at all (every job matches)."""
        return self.find_kwargs() == {}

    def find_kwargs(self) -> dict[str, Any]:
        """The arguments of ``client.jobs.find`` (without limit and cursor)."""
        out: dict[str, Any] = {}
        for name in ("queue", "state", "klass", "tag", "worker", "text", "since", "until"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.data:
            out["data"] = dict(self.data)
        return out

    def text_form(self) -> str:
        """The query written out again, qualifiers in a fixed order (relative times as given)."""
        parts = []
        for key, value in (("state", self.state), ("queue", self.queue), ("class", self.klass), ("tag", self.tag),
                           ("worker", self.worker)):
            if value is not None:
                parts.append(f"{key}:{quote(value)}")
        for path, value in self.data.items():
            parts.append(f"data.{path}:{quote(value) if isinstance(value, str) else _json(value)}")
        if self.text is not None:
            parts.append(f"text:{quote(self.text)}")
        if self.since is not None:
            parts.append(f"since:{quote(self.since_text)}")
        if self.until is not None:
            parts.append(f"until:{quote(self.until_text)}")
        return " ".join(parts)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def quote(value: str) -> str:
    """A value as the query bar writes it: bare when it can be, else double-quoted."""
    if value and not re.search(r'[\s"\\]', value) and not _looks_like_json(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _looks_like_json(value: str) -> bool:
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def tokenize(query: str) -> list[Term]:
    """The terms of a query, in order (QueryError for an unterminated quote)."""
    terms: list[Term] = []
    i, n = 0, len(query)
    while i < n:
        if query[i].isspace():
            i += 1
            continue
        start = i
        key = ""
        m = re.match(r"([A-Za-z_][\w.\-]*):", query[i:])
        if m:
            key = m.group(1)
            i += m.end()
        if i < n and query[i] == '"':
            value, i = _quoted(query, i)
            quoted = True
        else:
            j = i
            while j < n and not query[j].isspace():
                j += 1
            value, i, quoted = query[i:j], j, False
        terms.append(Term(key, value, quoted, start))
    return terms


def _quoted(query: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    j = i + 1
    while j < len(query):
        c = query[j]
        if c == "\\" and j + 1 < len(query):
            out.append(query[j + 1])
            j += 2
            continue
        if c == '"':
            return "".join(out), j + 1
        out.append(c)
        j += 1
    raise QueryError(f"unterminated quote at character {i + 1}: close it with \"", i)


def parse(query: str, now: float) -> Query:
    """The :class:`Query` of the query bar's text; ``now`` (epoch seconds, the engine's time)
    anchors relative times. QueryError names the term that cannot be read."""
    if len(query) > MAX_LENGTH:
        raise QueryError(f"the query is {len(query)} characters long; at most {MAX_LENGTH}", MAX_LENGTH)
    q = Query()
    seen: set[str] = set()
    words: list[str] = []
    for term in tokenize(query):
        key = _ALIASES.get(term.key, term.key)
        if not key:
            words.append(term.value)
            continue
        if key.startswith("data."):
            _data_term(q, term, key[5:])
            continue
        if key not in QUALIFIERS:
            raise QueryError(f'unknown qualifier "{term.key}:" (use {USAGE})', term.position)
        if key in seen:
            raise QueryError(f"{key}: is given twice", term.position)
        seen.add(key)
        _term(q, key, term, now)
    if words:
        if q.text is not None:
            raise QueryError("give the text once: either text:\"...\" or bare words", 0)
        q.text = " ".join(words)
    return q


def _term(q: Query, key: str, term: Term, now: float) -> None:
    value = term.value
    if value == "":
        raise QueryError(f"{key}: needs a value", term.position)
    if key == "state":
        if value not in STATES:
            raise QueryError(f"state: must be one of {', '.join(STATES)}; got {value!r}", term.position)
        q.state = value
    elif key == "class":
        if value == "*":
            raise QueryError("class: give a class name or a prefix before the *", term.position)
        q.klass = value
    elif key in ("queue", "tag", "worker", "text"):
        setattr(q, key, value)
    else:
        when = parse_time(value, now, key, term.position)
        if key == "since":
            q.since, q.since_text = when, value
        else:
            q.until, q.until_text = when, value
        if q.since is not None and q.until is not None and q.since > q.until:
            raise QueryError("since: is after until:", term.position)


def _data_term(q: Query, term: Term, path: str) -> None:
    if not path or "" in path.split("."):
        raise QueryError(f"data.{path}: the path is dot-separated keys, as in data.user.id:7", term.position)
    if path in q.data:
        raise QueryError(f"data.{path}: is given twice", term.position)
    if term.value == "" and not term.quoted:
        raise QueryError(f"data.{path}: needs a value", term.position)
    value: Any = term.value
    if not term.quoted:
        try:
            value = json.loads(term.value)
        except ValueError:
            value = term.value
    q.data[path] = value


def parse_time(value: str, now: float, key: str = "since", position: int = 0) -> float:
    """Epoch seconds of a ``since:``/``until:`` value (a duration ago, a date or time, or epoch
    seconds)."""
    if _DURATION.match(value):
        return now - sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(value))
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if number > 1e8:
            return number
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise QueryError(f"{key}: {value!r} is not a duration (90s, 15m, 2h, 7d, 1w), a date "
                         f"(2026-12-01, 2026-12-01T08:00) or epoch seconds", position) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()
