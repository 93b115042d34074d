"""A real redis-server for tests (see the package docstring)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

INSTALL_HINT = (
    "redis-server is not installed; install it (Debian/Ubuntu: "
    "apt-get update && apt-get install -y redis-server; macOS: brew install redis) "
    "or run scripts/test, which installs it"
)


class RedisServerError(RuntimeError):
    """redis-server is missing, or did not start."""


def require_redis_server() -> str:
    """The path of ``redis-server``; raises :class:`RedisServerError` with the command
    that installs it when it is missing."""
    path = shutil.which("redis-server")
    if path is None:
        raise RedisServerError(INSTALL_HINT)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``redis-server`` on a free loopback port, persistence off.

    ``password`` makes it require AUTH; ``tls=True`` makes it accept TLS connections
    only, with a certificate signed by a fresh CA (``ca_certs``; needs ``openssl``).
    Use it as a context manager, or :meth:`start` and :meth:`stop`.
    """

    def __init__(self, *, password: str | None = None, tls: bool = False) -> None:
        self.password = password
        self.tls = tls
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.ca_certs: str | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (``rediss://`` with TLS), without the password."""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING (10 s at most)."""
        binary = require_redis_server()
        self._dir = tempfile.TemporaryDirectory(prefix="llmx-redis-")
        workdir = Path(self._dir.name)
        self.port = _free_port()
        args = [
            binary,
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
            "--protected-mode", "no",
        ]  # fmt: skip
        if self.password is not None:
            args += ["--requirepass", self.password]
        if self.tls:
            self.ca_certs = self._make_certificates(workdir)
            args += [
                "--port", "0",
                "--tls-port", str(self.port),
                "--tls-cert-file", str(workdir / "server.crt"),
                "--tls-key-file", str(workdir / "server.key"),
                "--tls-ca-cert-file", self.ca_certs,
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        else:
            args += ["--port", str(self.port)]
        log = (workdir / "redis.log").open("wb")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = (workdir / "redis.log").read_text(errors="replace")[-2000:]
                self.stop()
                msg = f"redis-server exited at start:\n{output}"
                raise RedisServerError(msg)
            if self._ping():
                return self
            time.sleep(0.02)
        self.stop()
        msg = f"redis-server did not answer PING on 127.0.0.1:{self.port} within 10 s"
        raise RedisServerError(msg)

    def _ping(self) -> bool:
        import redis

        kwargs: dict[str, object] = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
        if self.password is not None:
            kwargs["password"] = self.password
        if self.tls:
            kwargs["ssl_ca_certs"] = self.ca_certs
        client = redis.Redis.from_url(self.url, **kwargs)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    @staticmethod
    def _make_certificates(workdir: Path) -> str:
        openssl = shutil.which("openssl")
        if openssl is None:
            msg = "openssl is needed for a TLS redis-server; apt-get install -y openssl"
            raise RedisServerError(msg)

        def run(*args: str) -> None:
            subprocess.run([openssl, *args], cwd=workdir, check=True, capture_output=True)

        # The extensions RFC 5280 asks for: Python 3.13's default context verifies
        # strictly (VERIFY_X509_STRICT) and refuses a CA without key usage, for one.
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=llmx test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
        (workdir / "ext.cnf").write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "authorityKeyIdentifier=keyid,issuer\n"
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n"
        )
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "1", "-extfile", "ext.cnf", "-out", "server.crt")  # fmt: skip
        return str(workdir / "ca.crt")

    def stop(self) -> None:
        """Stop the server and remove its files."""
        process, self.process = self.process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def flush(self) -> None:
        """Delete every key (between tests)."""
        import redis

        kwargs: dict[str, object] = {}
        if self.password is not None:
            kwargs["password"] = self.password
        if self.tls:
            kwargs["ssl_ca_certs"] = self.ca_certs
        client = redis.Redis.from_url(self.url, **kwargs)
        try:
            client.flushall()
        finally:
            client.close()


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")
