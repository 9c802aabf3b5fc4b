"""Fixtures: one patched and one plain (--plain) emulator per test session,
each launched as a subprocess exactly as the Rust harness does, and reset
(POST /_lbgp/reset, which also restores the default fidelity settings)
before every test that uses it."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

HERE = Path(__file__).resolve().parent
LAUNCHER = HERE / "lbgp_emulator.py"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
ACCOUNT = "123456789012"  # moto's default account

# Dummy credentials; keep any real AWS configuration of the machine out.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
)
for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"):
    os.environ.pop(_var, None)

# No client-side retries (each call = one request, so outcomes and counts are
# exact) and no client-side parameter validation (aws-sdk-rust has none).
CLIENT_CONFIG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"},
    parameter_validation=False,
    connect_timeout=5,
    read_timeout=30,
)


class Emulator:
    """A running lbgp_emulator.py subprocess."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, patched: bool, startup_s: float, stderr_path: str) -> None:
        self.proc = proc
        self.port = port
        self.patched = patched
        self.startup_s = startup_s
        self.stderr_path = stderr_path
        self.url = f"http://127.0.0.1:{port}"
        self._clients: dict[tuple[str, str], Any] = {}

    @property
    def name(self) -> str:
        return "patched" if self.patched else "plain"

    def client(self, service: str, region: str = "us-east-1") -> Any:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = boto3.client(
                service,
                region_name=region,
                endpoint_url=self.url,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=CLIENT_CONFIG,
            )
        return self._clients[key]

    def ec2(self, region: str = "us-east-1") -> Any:
        return self.client("ec2", region)

    def control(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        text = raw.decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def reset(self) -> None:
        status, _ = self.control("POST", "/_lbgp/reset")
        assert status == 200

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        status, body = self.control("POST", "/_lbgp/faults", faults)
        assert status == 200, body
        return body

    def set_fidelity(self, **settings: Any) -> dict[str, Any]:
        """POST /_lbgp/fidelity (replaces every setting; the others take
        their defaults). Accepted by the plain server too, which ignores it."""
        status, body = self.control("POST", "/_lbgp/fidelity", settings)
        assert status == 200, body
        return body

    def calls(self, detail: bool = False) -> Any:
        status, body = self.control("GET", "/_lbgp/calls" + ("?detail=1" if detail else ""))
        assert status == 200
        return body

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def start_emulator(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start the launcher the way the Rust harness does (stdin a pipe)."""
    stderr = tempfile.NamedTemporaryFile(prefix="lbgp-emulator-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "--port", "0", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=env,
    )
    proc._lbgp_stderr_path = stderr.name  # type: ignore[attr-defined]
    proc._lbgp_started = time.monotonic()  # type: ignore[attr-defined]
    stderr.close()
    return proc


def wait_listening(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> tuple[int, float]:
    """Read the LBGP_EMULATOR_LISTENING line; (port, seconds since start)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or proc.poll() is not None:
            err = Path(proc._lbgp_stderr_path).read_text()  # type: ignore[attr-defined]
            raise RuntimeError(f"emulator did not start (rc={proc.poll()}): {err[-3000:]}")
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 1)
            if not chunk:
                continue
            line += chunk
    elapsed = time.monotonic() - proc._lbgp_started  # type: ignore[attr-defined]
    text = line.decode().strip()
    prefix = "LBGP_EMULATOR_LISTENING port="
    assert text.startswith(prefix), text
    return int(text[len(prefix):]), elapsed


@pytest.fixture(scope="session")
def emulators() -> Any:
    procs = {"patched": start_emulator(), "plain": start_emulator("--plain")}
    servers: dict[str, Emulator] = {}
    try:
        for name, proc in procs.items():
            port, elapsed = wait_listening(proc)
            servers[name] = Emulator(proc, port, name == "patched", elapsed, proc._lbgp_stderr_path)  # type: ignore[attr-defined]
        yield servers
    finally:
        for server in servers.values():
            server.stop()
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


@pytest.fixture(params=["patched", "plain"])
def server(request: Any, emulators: dict[str, Emulator]) -> Emulator:
    """Each test using this runs on both: the AWS behaviour is asserted on the
    patched emulator, the gap on the plain one."""
    emulator = emulators[request.param]
    emulator.reset()
    return emulator


@pytest.fixture
def emu(emulators: dict[str, Emulator]) -> Emulator:
    """The patched emulator only, freshly reset."""
    emulator = emulators["patched"]
    emulator.reset()
    yield emulator
    emulator.control("DELETE", "/_lbgp/faults")


def error_of(call: Callable[[], Any]) -> tuple[str | None, int | None, str]:
    """(error code, HTTP status, message) of a call expected to fail;
    (None, 200, '') if it succeeded."""
    try:
        call()
    except ClientError as exc:
        meta = exc.response.get("ResponseMetadata", {})
        error = exc.response.get("Error", {})
        return error.get("Code"), meta.get("HTTPStatusCode"), error.get("Message", "")
    except (BotoCoreError, ResponseParserError) as exc:  # e.g. moto's HTML "500 Internal Server Error" page
        return "Unparseable", 500, str(exc)
    return None, 200, ""


def aws_or_gap(server: Emulator, aws_like: bool, what: str) -> None:
    """Patched: must behave like AWS. Plain: must still show the gap (if moto
    fixed it, this fails and tells us the patch may go)."""
    if server.patched:
        assert aws_like, f"patched emulator does not match AWS: {what}"
    else:
        assert not aws_like, (
            f"plain moto now matches AWS for: {what} - the fidelity patch may be obsolete"
        )
