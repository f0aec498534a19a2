"""Fixtures for the tests against the real Perl Job::Async::Redis 0.004 stack.

The stack (pure-Perl modules, ``client.pl``, ``worker.pl``) sits at ``../shared/perl-jobasync``
beside the repository root (``QE_PERL_JOBASYNC`` names another place). Its Debian packages come
from ``scripts/system_packages.sh``. When the stack or its packages are missing the tests FAIL
with the reason: an interoperability claim that is not checked is not kept.

Import what a test module uses: ``from .perl_fixtures import perl, perl_uri  # noqa: F401``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
PERL_DIR = Path(os.environ.get("QE_PERL_JOBASYNC") or ROOT.parent / "shared" / "perl-jobasync")
MODULES = ("Job::Async", "Job::Async::Client::Redis", "Job::Async::Worker::Redis", "Sereal::Encoder")


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll ``condition`` until it returns a true value (returned); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.01)


def _missing() -> str | None:
    if not PERL_DIR.is_dir():
        return (f"the Perl Job::Async stack is missing: {PERL_DIR} does not exist (CI puts a copy of "
                "shared/ beside the repository; set QE_PERL_JOBASYNC to its perl-jobasync folder)")
    for name in ("client.pl", "worker.pl", "lib/Job/Async/Worker/Redis.pm"):
        if not (PERL_DIR / name).exists():
            return f"the Perl Job::Async stack at {PERL_DIR} is incomplete: {name} is missing"
    if shutil.which("perl") is None:
        return "perl is not installed: run scripts/system_packages.sh (as root) to install the Perl stack's packages"
    probe = subprocess.run(
        ["perl", *[f"-M{m}" for m in MODULES], "-e1"], env=PerlStack.env(), capture_output=True, text=True,
        timeout=60, check=False,
    )
    if probe.returncode:
        return ("the Perl Job::Async stack cannot load (its Debian packages are missing; run "
                f"scripts/system_packages.sh as root): {probe.stderr.strip()[:500]}")
    return None


class PerlWorker:
    """A running ``worker.pl``: ``stop()`` sends SIGTERM and returns its exit code."""

    def __init__(self, args: list[str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            ["perl", str(PERL_DIR / "worker.pl"), *args], env=PerlStack.env(),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_for(lambda: any(line.startswith("worker ready") for line in self.lines) or self.process.poll() is not None,
                 "worker.pl to say 'worker ready'")
        if self.process.poll() is not None:
            pytest.fail(f"worker.pl exited with {self.process.returncode}: {''.join(self.lines)[-2000:]}")

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def stop(self) -> int:
        """SIGTERM, wait for a clean exit, return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)


class PerlStack:
    """The Perl stack: run ``client.pl``, start ``worker.pl``, run a Perl snippet."""

    dir = PERL_DIR

    @staticmethod
    def env() -> dict[str, str]:
        """The environment with PERL5LIB pointing at the stack's ``lib``."""
        env = dict(os.environ)
        env["PERL5LIB"] = str(PERL_DIR / "lib") + (":" + env["PERL5LIB"] if env.get("PERL5LIB") else "")
        return env

    def client(self, uri: str, n: int, *args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
        """Run ``client.pl URI N ARGS...`` to the end."""
        return subprocess.run(
            ["perl", str(PERL_DIR / "client.pl"), uri, str(n), *args], env=self.env(),
            capture_output=True, text=True, timeout=timeout, check=False,
        )

    def client_async(self, uri: str, n: int, *args: str) -> subprocess.Popen[str]:
        """Start ``client.pl`` in the background."""
        return subprocess.Popen(
            ["perl", str(PERL_DIR / "client.pl"), uri, str(n), *args], env=self.env(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def worker(self, uri: str, *args: str) -> PerlWorker:
        """Start ``worker.pl URI ARGS...`` and wait until it is ready."""
        return PerlWorker([uri, *args])

    def script(self, code: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run a Perl snippet with the stack on its path."""
        return subprocess.run(["perl", "-e", code, *args], env=self.env(), capture_output=True, text=True,
                              timeout=timeout, check=False)


@pytest.fixture(scope="session")
def perl() -> PerlStack:
    """The Perl Job::Async stack; fails the test (never skips) when it is missing."""
    reason = _missing()
    if reason:
        pytest.fail(reason, pytrace=False)
    return PerlStack()


@pytest.fixture
def perl_uri(redis_url: str, redis_conn: redis.Redis) -> Iterator[str]:
    """The session's Redis as a Perl peer needs it: ``redis://host:port`` (db 0), flushed."""
    parsed = urlparse(redis_url)
    assert parsed.path in ("", "/", "/0"), f"Job::Async::Redis always uses db 0, not {redis_url}"
    yield f"redis://{parsed.hostname}:{parsed.port}"


def results(stdout: str) -> dict[int, str]:
    """``client.pl``'s ``i<TAB>result`` lines as a dict."""
    out = {}
    for line in stdout.splitlines():
        i, _, value = line.partition("\t")
        out[int(i)] = value
    return out
