"""The engine tours of the README and of docs/engine.md run as written (on the test server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]


def _python_block(path: str, heading: str) -> str:
    text = (ROOT / path).read_text()
    after = text[text.index(heading):]
    start = after.index("```python\n") + len("```python\n")
    return after[start:after.index("```", start)]


@pytest.mark.parametrize(("path", "heading"), [("README.md", "## The engine"), ("docs/engine.md", "## A tour"),
                                               ("README.md", "### Search, due times, editing")])
def test_the_engine_tour_runs(path: str, heading: str, redis_url: str, redis_conn: redis.Redis) -> None:
    code = _python_block(path, heading).replace("redis://127.0.0.1:6379/0", redis_url)
    scope: dict[str, Any] = {}
    exec(compile(code, f"{path}:{heading}", "exec"), scope)  # noqa: S102 - the documented code itself
    client = scope["client"]
    try:
        assert client.jobs[scope["jid"]].state in ("complete", "waiting")
        assert redis_conn.exists(client.keys.job(scope["jid"]))
    finally:
        client.close()
