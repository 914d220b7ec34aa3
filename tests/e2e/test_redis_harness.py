"""The Redis harness itself (tests/support/redis_proc.py): Debian's redis-server, the RESP2
client, credentials, TLS, a crash and a restart on the same port."""

import socket
import ssl

import pytest

from redis_proc import RedisError, RedisServer


def test_plain_server_commands_crash_and_restart(tmp_path):
    with RedisServer(tmp_path) as redis:
        assert redis.url == f"redis://127.0.0.1:{redis.port}/0"
        assert redis.url_with_credentials == redis.url
        assert redis.command("SET", "greeting", "hello") == "OK"
        assert redis.command("GET", "greeting") == b"hello"
        assert redis.command("GET", "absent") is None
        assert redis.command("INCR", "counter") == 1
        assert redis.command("INCRBY", "counter", 41) == 42
        assert redis.command("RPUSH", "list", "a", b"b") == 2
        assert redis.command("LRANGE", "list", 0, -1) == [b"a", b"b"]
        with pytest.raises(RedisError, match="WRONGTYPE"):
            redis.command("INCR", "list")

        port = redis.port
        redis.stop()
        with pytest.raises(OSError):
            redis.command("PING", timeout=1)

        redis.start()
        assert redis.port == port
        assert redis.command("PING") == "PONG"
        # No persistence: the restart is empty.
        assert redis.command("GET", "greeting") is None


def test_a_persistent_server_keeps_its_data_through_a_crash(tmp_path):
    with RedisServer(tmp_path, persist=True) as redis:
        assert redis.command("INCRBY", "count", 7) == 7
        redis.stop()
        redis.start()
        assert redis.command("GET", "count") == b"7"


def test_pause_makes_commands_time_out(tmp_path):
    with RedisServer(tmp_path) as redis:
        redis.pause()
        with pytest.raises(TimeoutError):
            redis.command("PING", timeout=0.5)
        redis.resume()
        assert redis.command("PING") == "PONG"


def test_acl_user_required(tmp_path):
    with RedisServer(tmp_path, password="s3cret:/@pw", username="l402") as redis:
        assert redis.url == f"redis://127.0.0.1:{redis.port}/0"
        assert redis.url_with_credentials == f"redis://l402:s3cret%3A%2F%40pw@127.0.0.1:{redis.port}/0"
        with pytest.raises(RedisError, match="NOAUTH"):
            redis.command("SET", "k", "v", auth=False)
        assert redis.command("SET", "k", "v") == "OK"
        assert redis.command("GET", "k") == b"v"
        assert redis.command("ACL", "WHOAMI") == b"l402"


def test_requirepass(tmp_path):
    with RedisServer(tmp_path, password="pw") as redis:
        assert redis.url_with_credentials == f"redis://:pw@127.0.0.1:{redis.port}/0"
        with pytest.raises(RedisError, match="NOAUTH"):
            redis.command("PING", auth=False)
        assert redis.command("PING") == "PONG"


def test_tls(tmp_path):
    with RedisServer(tmp_path, password="pw", username="l402", tls=True) as redis:
        assert redis.url == f"rediss://127.0.0.1:{redis.port}/0"
        assert redis.ca_file is not None and redis.ca_file.exists()
        assert redis.command("PING") == "PONG"
        # A TLS connection, and a certificate that verifies against the harness's CA only.
        with redis.connect() as tls:
            assert isinstance(tls, ssl.SSLSocket) and tls.version() is not None
        with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as plain:
            with pytest.raises(ssl.SSLCertVerificationError):
                ssl.create_default_context().wrap_socket(plain, server_hostname="127.0.0.1")
