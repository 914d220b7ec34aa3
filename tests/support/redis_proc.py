"""Debian's redis-server on a free loopback port, without persistence, for the tests that need a
real Redis (scripts/setup.sh installs it), and a tiny RESP2 client to talk to it.

    with RedisServer(workdir, password="pw", username="l402", tls=True) as redis:
        redis.url                     # rediss://127.0.0.1:<port>/0 (no credentials)
        redis.url_with_credentials    # rediss://l402:pw@127.0.0.1:<port>/0
        redis.ca_file                 # the CA that signed the server's certificate (tls only)
        redis.command("SET", "k", "v")
        redis.stop(); redis.start()   # a crash (SIGKILL), then a restart on the same port: empty
        redis.pause(); redis.resume() # a hung Redis (SIGSTOP, SIGCONT)

Only the standard library: no Redis client from PyPI.
"""

import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from procs import Process, free_port

HOST = "127.0.0.1"
SETUP = "run scripts/setup.sh quick (it installs Debian's redis-server and openssl)"


class RedisError(Exception):
    """An error reply (`-ERR …`, `-NOAUTH …`, `-WRONGPASS …`): the message without the dash."""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is missing: {SETUP}")
    return path


def _openssl(*args: str, cwd: Path):
    result = subprocess.run([_tool("openssl"), *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{result.stderr}")


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA and a server certificate it signed for 127.0.0.1 and localhost, made with
    the openssl CLI into `directory`: (ca.crt, server.crt, server.key)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.ext").write_text(
        "basicConstraints = critical, CA:TRUE\n"
        "keyUsage = critical, keyCertSign, cRLSign\n"
        "subjectKeyIdentifier = hash\n")
    (directory / "server.ext").write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid:always\n")
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.csr",
             "-subj", "/CN=envoy-l402 test Redis CA", cwd=directory)
    _openssl("x509", "-req", "-in", "ca.csr", "-signkey", "ca.key", "-days", "7", "-sha256",
             "-extfile", "ca.ext", "-out", "ca.crt", cwd=directory)
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost", cwd=directory)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "7", "-sha256", "-extfile", "server.ext", "-out", "server.crt", cwd=directory)
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


def _encode(args) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, (int, float)) and not isinstance(arg, bool):
            data = str(arg).encode()
        else:
            raise TypeError(f"a Redis argument must be bytes, str, int or float, not {type(arg).__name__}")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _line(reader) -> bytes:
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("Redis closed the connection mid-reply")
    return line[:-2]


def _reply(reader):
    """One RESP2 reply: simple string -> str, bulk string -> bytes, integer -> int, array -> list,
    null bulk or null array -> None; an error reply raises RedisError."""
    line = _line(reader)
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisError(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = reader.read(size + 2)
        if len(data) != size + 2:
            raise ConnectionError("Redis closed the connection mid-reply")
        return data[:-2]
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [_reply(reader) for _ in range(count)]
    raise ValueError(f"not a RESP2 reply: {line[:80]!r}")


class RedisServer:
    """redis-server on a free loopback port, started and answering PING; killed on leaving a
    `with` block. With `username` and `password` the only usable user is an ACL user with every
    permission (`default` is off); with `password` alone, `requirepass`. With `tls`, the port
    speaks TLS only, with a certificate signed by `ca_file` (clients are not asked for one)."""

    def __init__(self, workdir: Path, password: str | None = None, username: str | None = None,
                 tls: bool = False, name="redis", persist: bool = False):
        if username is not None and password is None:
            raise ValueError("a Redis username needs a password")
        self.binary = _tool("redis-server")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.username = username
        self.tls = tls
        # With `persist`, every write is in the append-only file before it is answered, so data
        # survives stop() (a SIGKILL) and start(), as in a production Redis with AOF.
        self.persist = persist
        self.name = name
        self.log = self.workdir / f"{name}.log"
        self.port = free_port()
        self.process: Process | None = None
        self.ca_file: Path | None = None
        self._cert_file = self._key_file = None
        if tls:
            self.ca_file, self._cert_file, self._key_file = make_certificates(self.workdir / f"{name}-tls")
        self.start()

    # --- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """redis://127.0.0.1:<port>/0 (rediss:// with TLS), without credentials."""
        return f"{'rediss' if self.tls else 'redis'}://{HOST}:{self.port}/0"

    @property
    def url_with_credentials(self) -> str:
        """The url with the username and password in it (percent-encoded); the url without them
        when there is no password."""
        if self.password is None:
            return self.url
        user = quote(self.username, safe="") if self.username is not None else ""
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{user}:{quote(self.password, safe='')}@{rest}"

    # --- the process --------------------------------------------------------------------------

    def args(self) -> list[str]:
        aof = ["--appendonly", "yes", "--appendfsync", "always", "--appendfilename", f"{self.name}.aof",
               "--appenddirname", f"{self.name}-aof"] if self.persist else ["--appendonly", "no"]
        args = [self.binary, "--bind", HOST, "--save", "", *aof, "--daemonize", "no",
                "--protected-mode", "no", "--dir", str(self.workdir)]
        if self.tls:
            args += ["--port", "0", "--tls-port", str(self.port),
                     "--tls-cert-file", str(self._cert_file), "--tls-key-file", str(self._key_file),
                     "--tls-ca-cert-file", str(self.ca_file), "--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        if self.username is not None:
            args += ["--user", self.username, "on", f">{self.password}", "~*", "&*", "+@all",
                     "--user", "default", "off"]
        elif self.password is not None:
            args += ["--requirepass", self.password]
        return args

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def start(self):
        """Starts redis-server (again, on the same port; empty after a stop unless `persist`) and waits
        for PING."""
        if self.alive():
            return
        self.process = Process(self.name, self.args(), self.log)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self):
        """SIGKILL, as a crash would (a paused server too); nothing is saved."""
        if self.process is not None:
            self.process.signal(signal.SIGKILL)
            self.process.popen.wait()
            self.process.stop()

    def pause(self):
        """SIGSTOP: the port still accepts connections but nothing is answered (a hung Redis)."""
        if not self.alive():
            raise RuntimeError(f"{self.name} is not running")
        self.process.signal(signal.SIGSTOP)

    def resume(self):
        """SIGCONT after pause()."""
        if not self.alive():
            raise RuntimeError(f"{self.name} is not running")
        self.process.signal(signal.SIGCONT)

    def wait_ready(self, timeout: float = 10):
        """Polls PING until PONG; fails with the last error and the log's tail otherwise."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if not self.alive():
                tail = self.process.tail() if self.process is not None else ""
                raise RuntimeError(f"{self.name} exited while waiting for PING:\n{tail}")
            try:
                if self.command("PING", timeout=1) == "PONG":
                    return
            except (OSError, RedisError, ValueError) as e:
                last = e
            time.sleep(0.05)
        tail = self.process.tail() if self.process is not None else ""
        raise RuntimeError(f"timed out after {timeout} s waiting for {self.name} to answer PING "
                           f"on {self.url} (last error: {last!r}):\n{tail}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # --- the client ---------------------------------------------------------------------------

    def connect(self, timeout: float = 5) -> socket.socket:
        """A connected socket (TLS-wrapped, verified against ca_file, when tls)."""
        sock = socket.create_connection((HOST, self.port), timeout=timeout)
        if not self.tls:
            return sock
        context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            return context.wrap_socket(sock, server_hostname=HOST)
        except BaseException:
            sock.close()
            raise

    def command(self, *args, auth: bool = True, timeout: float = 5):
        """Sends one command on a fresh connection (after AUTH with the credentials, unless
        `auth` is false) and returns its reply: str (simple strings), bytes (bulk strings), int,
        list or None. Raises RedisError for an error reply and OSError when Redis cannot be
        reached or does not answer within `timeout` seconds."""
        if not args:
            raise ValueError("no command")
        with self.connect(timeout) as sock, sock.makefile("rb") as reader:
            if auth and self.password is not None:
                credentials = (self.username, self.password) if self.username is not None else (self.password,)
                sock.sendall(_encode(("AUTH", *credentials)))
                _reply(reader)
            sock.sendall(_encode(args))
            return _reply(reader)
