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


def _resolves(dotted: str) -> bool:
    """Whether ``queueengine.a.b.C`` names a module, or an attribute of the longest importable
    module prefix."""
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for name in parts[i:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


def test_every_import_path_the_docs_name_exists() -> None:
    """Every ``queueengine.<module>[.<name>]`` path in the README and docs/ can be imported (the
    house was rearranged once: a path a newcomer copies must work). System-check ids
    (``queueengine.E001``) are not paths."""
    import re

    missing = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for dotted in sorted(set(re.findall(r"\bqueueengine(?:\.[A-Za-z_]\w*)+", doc.read_text()))):
            if re.fullmatch(r"queueengine\.[EWI]\d{3}|queueengine\.[EWI]0xx", dotted):
                continue
            if not _resolves(dotted.rstrip(".")):
                missing.append(f"{doc.name}: {dotted}")
    assert not missing, missing
