"""Read and change permissions and HTTPS on the driver's UI port, on real driver processes.

Each test starts `kubestream run` (a driver and one executor process) with the job's
own key pair, so it knows the tokens the driver derives; requests go over real
sockets, HTTPS with a CA made here by openssl (and a second CA the client must not
accept).
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubestream.driver.api_auth import api_token, read_token
from kubestream.transport import generate_keypair

APP = """
from kubestream import StreamingContext


def build(ssc: StreamingContext, args: list[str]) -> None:
    ssc.rate_stream(50).foreach_rdd(lambda rdd: rdd.count())
"""
SCRAPE = "scrape-token-for-prometheus"


@dataclass
class Driver:
    port: int
    read: str
    change: str
    context: ssl.SSLContext | None
    log: Path
    secret: str
    public: str

    def request(
        self,
        method: str,
        path: str,
        token: str = "",
        cookie: str = "",
        context: ssl.SSLContext | None = None,
    ) -> http.client.HTTPResponse:
        connection: http.client.HTTPConnection
        if self.context is None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        else:
            connection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=10, context=context or self.context
            )
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if cookie:
            headers["Cookie"] = cookie
        try:
            connection.request(method, path, headers=headers)
            response = connection.getresponse()
            response.read()
            return response
        finally:
            connection.close()


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> None:
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=directory,
    )  # fmt: skip


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.crt signs server.crt (for 127.0.0.1); other-ca.crt signs other-server.crt (a
    renewal from another CA) and nothing else of ours."""
    directory = tmp_path_factory.mktemp("tls")
    make_ca(directory, "ca")
    make_ca(directory, "other-ca")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for server, ca in (("server", "ca"), ("other-server", "other-ca")):
        openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=driver",
            "-keyout", f"{server}.key", "-out", f"{server}.csr", cwd=directory,
        )  # fmt: skip
        openssl(
            "x509", "-req", "-in", f"{server}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", f"{server}.crt",
            cwd=directory,
        )  # fmt: skip
    return directory


StartDriver = Callable[..., Driver]


@pytest.fixture
def start_driver(tmp_path: Path) -> Iterator[StartDriver]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(tls: Path | None = None, **env: str) -> Driver:
        public, secret = generate_keypair()
        app = tmp_path / "access_app.py"
        app.write_text(APP)
        log = tmp_path / f"driver-{len(procs)}.log"
        variables = {
            **os.environ,
            "KUBESTREAM_CURVE_PUBLIC_KEY": public,
            "KUBESTREAM_CURVE_SECRET_KEY": secret,
            "KUBESTREAM_UI_SCRAPE_TOKEN": SCRAPE,
            **env,
        }
        flags = ["--ui-port", "0", "--executors", "1", "--batch-interval", "0.5"]
        if tls is not None:
            flags += [
                "--ui-tls-cert",
                str(tls / "server.crt"),
                "--ui-tls-key",
                str(tls / "server.key"),
            ]
        with log.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "kubestream", "run", str(app), *flags],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=variables,
                )
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = re.search(r"Streaming UI at (https?)://127\.0\.0\.1:(\d+)/", log.read_text())
            if found:
                break
            assert procs[-1].poll() is None, log.read_text()
            time.sleep(0.1)
        else:
            pytest.fail(f"no UI address in the driver's output:\n{log.read_text()}")
        assert found.group(1) == ("https" if tls else "http")
        context = None
        if tls is not None:
            context = ssl.create_default_context(cafile=str(tls / "ca.crt"))
        return Driver(
            int(found.group(2)), read_token(secret), api_token(secret), context, log, secret, public
        )

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


READS = ["/", "/app.js", "/api/v1/status?batches=1", "/metrics"]


def test_closed_reading_needs_the_read_token(start_driver: StartDriver) -> None:
    driver = start_driver(KUBESTREAM_UI_READ_ACCESS="token")
    for path in READS:
        assert driver.request("GET", path).status == 401, path
        assert driver.request("GET", path, token="wrong").status == 401, path
        assert driver.request("GET", path, token=driver.change).status == 401, path
        assert driver.request("GET", path, token=driver.read).status == 200, path
    assert driver.request("GET", "/healthz").status == 200  # the readiness probe's
    # The scrape token reads /metrics and nothing else.
    assert driver.request("GET", "/metrics", token=SCRAPE).status == 200
    assert driver.request("GET", "/api/v1/status", token=SCRAPE).status == 401
    assert driver.request("GET", "/", token=SCRAPE).status == 401


def test_a_browser_gets_the_page_after_one_url_with_the_token(start_driver: StartDriver) -> None:
    driver = start_driver(KUBESTREAM_UI_READ_ACCESS="token")
    assert driver.request("GET", "/?token=wrong").status == 401
    login = driver.request("GET", f"/?token={driver.read}")
    assert login.status == 303 and login.getheader("Location") == "/"
    cookie = login.getheader("Set-Cookie") or ""
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    jar = cookie.split(";")[0]
    assert driver.request("GET", "/", cookie=jar).status == 200
    assert driver.request("GET", "/api/v1/status", cookie=jar).status == 200
    assert driver.request("GET", "/", cookie="kubestream_token=forged").status == 401
    # The cookie never changes the job: a drain needs the header.
    assert driver.request("POST", "/api/v1/executors/exec-1/decommission", cookie=jar).status == 401
    assert driver.read not in driver.log.read_text()


def test_open_reading_answers_anyone_and_drains_still_need_the_change_token(
    start_driver: StartDriver,
) -> None:
    driver = start_driver()
    for path in READS:
        assert driver.request("GET", path).status == 200, path
    drain = "/api/v1/executors/no-such-executor/decommission"
    assert driver.request("POST", drain).status == 401
    assert driver.request("POST", drain, token=driver.read).status == 401
    # With the change token the request is let through (and refused for the unknown id).
    answer = driver.request("POST", drain, token=driver.change)
    assert answer.status == 409


def test_open_change_lets_anyone_drain(start_driver: StartDriver) -> None:
    driver = start_driver(KUBESTREAM_UI_CHANGE_ACCESS="open")
    assert driver.request("POST", "/api/v1/executors/no-such-executor/decommission").status == 409


def test_https_is_verified_against_the_right_ca_only(
    start_driver: StartDriver, certificates: Path
) -> None:
    driver = start_driver(tls=certificates, KUBESTREAM_UI_READ_ACCESS="token")
    assert driver.request("GET", "/metrics", token=driver.read).status == 200
    wrong = ssl.create_default_context(cafile=str(certificates / "other-ca.crt"))
    with pytest.raises(ssl.SSLCertVerificationError):
        driver.request("GET", "/metrics", token=driver.read, context=wrong)
    plain = http.client.HTTPConnection("127.0.0.1", driver.port, timeout=10)
    try:
        with pytest.raises(
            (http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine)
        ):
            plain.request("GET", "/metrics")
            response = plain.getresponse()
            response.read()
            raise AssertionError(f"plain HTTP was answered {response.status}")
    finally:
        plain.close()
    driver.request("GET", "/healthz")  # the driver still serves, and logged one line each
    refusals = driver.log.read_text()
    assert "no TLS session with" in refusals and "Traceback" not in refusals


def replace_file(source: Path, target: Path) -> None:
    """Write ``target`` at once (a rename), as a certificate renewal would."""
    staged = target.with_suffix(".staged")
    shutil.copy(source, staged)
    os.replace(staged, target)


def test_a_renewed_certificate_is_served_without_a_restart_and_a_broken_pair_is_not(
    start_driver: StartDriver, certificates: Path, tmp_path: Path
) -> None:
    live = tmp_path / "live"
    live.mkdir()
    for name in ("server.crt", "server.key", "ca.crt"):
        shutil.copy(certificates / name, live / name)
    driver = start_driver(tls=live)
    renewed = ssl.create_default_context(cafile=str(certificates / "other-ca.crt"))
    assert driver.request("GET", "/healthz").status == 200
    # Half a renewal (a key that is not the certificate's): the served pair is kept.
    replace_file(certificates / "other-server.key", live / "server.key")
    assert driver.request("GET", "/healthz").status == 200
    assert "kept the previous certificate" in driver.log.read_text()
    # The whole renewal: the same process serves the new certificate from now on.
    replace_file(certificates / "other-server.crt", live / "server.crt")
    assert driver.request("GET", "/healthz", context=renewed).status == 200
    with pytest.raises(ssl.SSLCertVerificationError):
        driver.request("GET", "/healthz")
    assert "Traceback" not in driver.log.read_text()


def executor_metrics_port(driver: Driver) -> int:
    """The first executor's /metrics port, from its INFO line in the job's output."""
    pattern = r"executor exec-1 metrics at http://127\.0\.0\.1:(\d+)/metrics"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(pattern, driver.log.read_text())
        if found:
            return int(found.group(1))
        time.sleep(0.1)
    pytest.fail(f"no executor metrics address in the output:\n{driver.log.read_text()}")


def get(port: int, path: str, token: str = "") -> int:
    return fetch(port, path, token)[0]


def fetch(port: int, path: str, token: str = "") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "GET", path, headers={"Authorization": f"Bearer {token}"} if token else {}
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_an_executors_metrics_need_the_read_token_as_the_drivers_do(
    start_driver: StartDriver,
) -> None:
    driver = start_driver(KUBESTREAM_UI_READ_ACCESS="token", KUBESTREAM_LOG_LEVEL="INFO")
    port = executor_metrics_port(driver)
    assert get(port, "/metrics") == 401
    assert get(port, "/metrics", "wrong") == 401
    assert get(port, "/metrics", driver.change) == 401  # the change token does not read
    code, body = fetch(port, "/metrics", driver.read)
    assert code == 200 and b'kubestream_executor_info{executor_id="exec-1"} 1.0' in body
    assert get(port, "/metrics", SCRAPE) == 200  # a PodMonitor's scrape token
    assert get(port, "/healthz") == 200  # the readiness probe's, open
    output = driver.log.read_text()
    assert "refused to show /metrics" in output
    assert driver.read not in output and SCRAPE not in output


def test_an_executors_metrics_are_open_when_reading_is(start_driver: StartDriver) -> None:
    driver = start_driver(KUBESTREAM_LOG_LEVEL="INFO")
    port = executor_metrics_port(driver)
    assert get(port, "/metrics") == 200
    assert get(port, "/metrics", "anything") == 200


def test_a_rotated_scrape_token_file_is_taken_by_the_running_driver_and_executors(
    start_driver: StartDriver, tmp_path: Path
) -> None:
    """The file stands for the job Secret's key as the kubelet mounts and updates it."""
    token_file = tmp_path / "ui-scrape-token"
    token_file.write_text("first-scrape-token\n")
    driver = start_driver(
        KUBESTREAM_UI_READ_ACCESS="token",
        KUBESTREAM_UI_SCRAPE_TOKEN_FILE=str(token_file),
        KUBESTREAM_LOG_LEVEL="INFO",
    )
    ports = (driver.port, executor_metrics_port(driver))
    for port in ports:
        assert get(port, "/metrics", "first-scrape-token") == 200
    assert get(driver.port, "/api/v1/status", "first-scrape-token") == 401  # /metrics only
    staged = tmp_path / "staged"
    staged.write_text("second-scrape-token\n")
    os.replace(staged, token_file)
    for port in ports:
        assert get(port, "/metrics", "first-scrape-token") == 401
        assert get(port, "/metrics", "second-scrape-token") == 200
        assert get(port, "/metrics") == 401
    output = driver.log.read_text()
    assert "first-scrape-token" not in output and "second-scrape-token" not in output


def replace(path: Path, text: str) -> None:
    """Write a file as the kubelet updates a mounted Secret's key: whole, in one rename."""
    staged = path.with_name(path.name + ".staged")
    staged.write_text(text)
    os.replace(staged, path)


def decommission_cli(driver: Driver, generation_file: Path) -> str:
    """What `kubestream decommission nobody` says, with the job's keys and this file."""
    done = subprocess.run(
        [sys.executable, "-m", "kubestream", "decommission", "nobody", "--timeout", "5"],
        env={
            **os.environ,
            "KUBESTREAM_CURVE_PUBLIC_KEY": driver.public,
            "KUBESTREAM_CURVE_SECRET_KEY": driver.secret,
            "KUBESTREAM_UI_TOKEN_GENERATION_FILE": str(generation_file),
            "KUBESTREAM_URL": f"http://127.0.0.1:{driver.port}",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    return done.stdout + done.stderr


def test_a_new_token_generation_rotates_the_read_and_change_tokens_without_a_restart(
    start_driver: StartDriver, tmp_path: Path
) -> None:
    """The file stands for the job Secret's ui-token-generation as the kubelet mounts it."""
    generation_file = tmp_path / "ui-token-generation"
    generation_file.write_text("0\n")
    driver = start_driver(
        KUBESTREAM_UI_READ_ACCESS="token",
        KUBESTREAM_UI_TOKEN_GENERATION_FILE=str(generation_file),
        KUBESTREAM_LOG_LEVEL="INFO",
    )
    executor_port = executor_metrics_port(driver)
    drain = "/api/v1/executors/nobody/decommission"  # 409 once allowed: no such executor

    def allowed(read: str, change: str) -> None:
        assert driver.request("GET", "/api/v1/status", token=read).status == 200
        assert get(driver.port, "/metrics", read) == 200
        assert get(executor_port, "/metrics", read) == 200
        assert driver.request("GET", f"/?token={read}").status == 303
        assert driver.request("POST", drain, token=change).status == 409

    def refused(read: str, change: str) -> None:
        assert driver.request("GET", "/api/v1/status", token=read).status == 401
        assert get(driver.port, "/metrics", read) == 401
        assert get(executor_port, "/metrics", read) == 401
        assert driver.request("GET", f"/?token={read}").status == 401
        assert driver.request("POST", drain, token=change).status == 401

    generations = {g: (read_token(driver.secret, g), api_token(driver.secret, g)) for g in (1, 2)}
    allowed(driver.read, driver.change)  # generation 0: the tokens from before generations
    refused(*generations[1])
    replace(generation_file, "1\n")
    refused(driver.read, driver.change)
    allowed(*generations[1])
    # `kubestream decommission` in a pod reads the same file: the driver lets it ask.
    assert "answered 409: no executor 'nobody'" in decommission_cli(driver, generation_file)
    old_file = tmp_path / "old-generation"
    old_file.write_text("0")
    assert "answered 401" in decommission_cli(driver, old_file)
    assert get(executor_port, "/metrics", SCRAPE) == 200  # the scrape token is another matter
    # A file that holds no generation refuses every token rather than fall back to 0.
    replace(generation_file, "one\n")
    refused(driver.read, driver.change)
    refused(*generations[1])
    assert "KUBESTREAM_UI_TOKEN_GENERATION_FILE" in decommission_cli(driver, generation_file)
    replace(generation_file, "2")
    allowed(*generations[2])
    refused(*generations[1])
    output = driver.log.read_text()
    assert "does not hold a non-negative integer" in output
    tokens = [driver.read, driver.change, *(t for pair in generations.values() for t in pair)]
    assert not [token for token in tokens if token in output]
