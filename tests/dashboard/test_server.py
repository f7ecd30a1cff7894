"""The dashboard's server: loopback only, its own page only, the configured API only,
every call signed with SigV4 as the CLI signs, and the API's answers as they came."""

from __future__ import annotations

import http.client
import io
import json
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from bluegreen_cli.dashboard.server import CALL_HEADER, DashboardServer
from bluegreen_cli.main import main

from tests.dashboard import answers
from tests.fake_api import FakeApi, Seen

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "cli" / "bluegreen_cli" / "dashboard" / "assets"

Start = Callable[[str], DashboardServer]


def request(
    server: DashboardServer,
    method: str,
    path: str,
    *,
    body: object | None = None,
    token: str | None = None,
    host: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request to the dashboard, with exactly the headers given."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {"Host": host or f"127.0.0.1:{server.port}"}
    if token is not None:
        headers[CALL_HEADER] = token
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    connection.request(method, path, body=data, headers=headers)
    answer = connection.getresponse()
    raw = answer.read()
    connection.close()
    return answer.status, dict(answer.getheaders()), raw


def signature_is_valid(seen: Seen, origin: str) -> bool:
    """Recompute the request's SigV4 signature with the test credentials."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    fields = dict(
        part.strip().split("=", 1)
        for part in seen.headers["Authorization"].removeprefix("AWS4-HMAC-SHA256 ").split(",")
    )
    signed = fields["SignedHeaders"].split(";")
    headers = {name: value for name, value in seen.headers.items() if name.lower() in signed}
    rebuilt = AWSRequest(method=seen.method, url=origin + seen.path, data=seen.raw, headers=headers)
    rebuilt.context["timestamp"] = seen.headers["X-Amz-Date"]
    sigv4 = SigV4Auth(Credentials("testing", "testing", "testing"), "execute-api", "us-west-2")
    expected = sigv4.signature(
        sigv4.string_to_sign(rebuilt, sigv4.canonical_request(rebuilt)), rebuilt
    )
    return bool(expected == fields["Signature"])


def listening_addresses(port: int) -> set[str]:
    """Every local address a socket LISTENs on at ``port`` (from the kernel's tables)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        lines = Path(table).read_text().splitlines()[1:]
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_the_dashboard_listens_on_loopback_only(fake_api: FakeApi, dashboard_for: Start) -> None:
    # GIVEN a dashboard started as the command starts it
    server = dashboard_for(fake_api.url)
    # WHEN the kernel's table of listening sockets is read for its port
    listening = listening_addresses(server.port)
    # THEN it listens on 127.0.0.1 (0100007F) only: not 0.0.0.0, not IPv6
    assert server.address == ("127.0.0.1", server.port)
    assert listening == {"0100007F"}


def test_there_is_no_option_to_bind_another_address(capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN the command is asked to bind every address
    every_address = ".".join(["0"] * 4)
    code = main(["--endpoint", "http://127.0.0.1:9", "dashboard", "--host", every_address])
    # THEN it is a usage error
    assert code == 2
    assert "unrecognized arguments: --host" in capsys.readouterr().err


def test_a_page_call_reaches_the_configured_api_signed_with_sigv4(
    fake_api: FakeApi, dashboard_for: Start
) -> None:
    # GIVEN a dashboard in front of the API (a stage URL with its /v1 path)
    answers.serve_release(fake_api)
    server = dashboard_for(fake_api.url)
    # WHEN the page asks for the services and for a page of deployments
    status, headers, raw = request(server, "GET", "/api/services", token=server.token)
    paged = request(server, "GET", "/api/deployments?limit=5", token=server.token)
    # THEN the API's answers come back unchanged
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(raw) == answers.services()
    assert paged[0] == 200
    # AND each call reached the configured stage, signed for execute-api with the caller's keys
    assert [seen.path for seen in fake_api.seen] == ["/v1/services", "/v1/deployments?limit=5"]
    origin = fake_api.url.removesuffix("/v1")
    for seen in fake_api.seen:
        assert seen.headers["Host"] == origin.removeprefix("http://")
        authorization = seen.headers["Authorization"]
        assert authorization.startswith("AWS4-HMAC-SHA256 Credential=testing/")
        assert "/us-west-2/execute-api/aws4_request" in authorization
        assert seen.headers["X-Amz-Security-Token"] == "testing"
        assert signature_is_valid(seen, origin)
        assert CALL_HEADER not in seen.headers  # the page's token stays on this machine


def test_an_action_goes_with_its_json_body_and_the_apis_refusal_comes_back_as_it_came(
    fake_api: FakeApi, dashboard_for: Start
) -> None:
    # GIVEN an API that refuses a digest it judged failed
    refusal = {"error": "DigestFailed", "detail": f"{answers.NEW} was judged failed"}
    fake_api.routes[("POST", "/v1/services")] = (409, refusal)
    server = dashboard_for(fake_api.url)
    # WHEN the page asks to deploy it
    body = {"imageTag": answers.NEW, "service": "canary", "reason": "retry"}
    status, _, raw = request(server, "POST", "/api/services", body=body, token=server.token)
    # THEN the API got that body, signed, and the page gets the 409 and its body unchanged
    assert (status, json.loads(raw)) == (409, refusal)
    (seen,) = fake_api.seen
    assert (seen.method, seen.path, seen.body) == ("POST", "/v1/services", body)
    assert signature_is_valid(seen, fake_api.url.removesuffix("/v1"))


@pytest.mark.parametrize(
    ("method", "target", "status"),
    [
        ("GET", "/api//evil.example/services", 404),
        ("GET", "/api/http://evil.example/services", 404),
        ("GET", "/api/deployments/../../admin", 404),
        ("GET", "/api/deployments/%2e%2e%2fservices", 404),
        ("GET", "/api/services/extra", 404),
        ("GET", "/api/anything", 404),
        ("DELETE", "/api/services", 405),
        ("POST", "/api/images", 405),
        ("GET", "/api/images?limit=5&endpoint=http://evil.example", 400),
        ("GET", "/api/images?limit=many", 400),
    ],
)
def test_calls_that_are_not_routes_of_the_api_are_never_forwarded(
    fake_api: FakeApi, dashboard_for: Start, method: str, target: str, status: int
) -> None:
    # GIVEN a dashboard in front of the API
    server = dashboard_for(fake_api.url)
    # WHEN the page (with its token) asks for something that is not one of the API's routes
    answered, _, raw = request(server, method, target, token=server.token)
    # THEN it is refused with a reason, and nothing at all went to the API
    assert answered == status
    assert json.loads(raw)["detail"]
    assert fake_api.seen == []


@pytest.mark.parametrize(
    ("token", "host", "status", "error"),
    [
        (None, None, 403, "NotThePage"),
        ("a-guess", None, 403, "NotThePage"),
        ("the-token", "evil.example:3100", 421, "WrongHost"),
        ("the-token", "127.0.0.1.nip.io", 421, "WrongHost"),
    ],
)
def test_only_the_dashboards_own_page_may_call(
    fake_api: FakeApi,
    dashboard_for: Start,
    token: str | None,
    host: str | None,
    status: int,
    error: str,
) -> None:
    # GIVEN a dashboard, and a call without the page's token or under another host name
    # (another site's page, or a DNS name rebound to 127.0.0.1)
    answers.serve_release(fake_api)
    server = dashboard_for(fake_api.url)
    sent = server.token if token == "the-token" else token
    # WHEN that call asks for a deploy
    answered, _, raw = request(
        server, "POST", "/api/services", body={"imageTag": "dev"}, token=sent, host=host
    )
    # THEN it is refused and the API never heard of it
    assert (answered, json.loads(raw)["error"]) == (status, error)
    assert fake_api.seen == []


def test_an_unreachable_api_is_a_502_that_says_so(dashboard_for: Start) -> None:
    # GIVEN a dashboard whose API endpoint nobody serves
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    server = dashboard_for(f"http://127.0.0.1:{port}/v1")
    # WHEN the page asks for the services
    status, _, raw = request(server, "GET", "/api/services", token=server.token)
    # THEN 502 names the endpoint it could not reach
    body = json.loads(raw)
    assert (status, body["error"]) == (502, "ApiUnreachable")
    assert f"127.0.0.1:{port}" in body["detail"]


def test_the_page_and_its_assets_come_from_the_package_with_a_csp_of_self_only(
    fake_api: FakeApi, dashboard_for: Start
) -> None:
    # GIVEN a dashboard
    answers.serve_release(fake_api)
    server = dashboard_for(fake_api.url)
    # WHEN the page and its files are fetched
    status, headers, raw = request(server, "GET", "/")
    page = raw.decode()
    # THEN the page carries this process's token and the first answers, and lets the browser
    # load and call nothing but this server
    assert status == 200
    assert f'<meta name="bluegreen-token" content="{server.token}">' in page
    assert '"canary":"blue"' in page
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    for directive in ("script-src", "style-src", "img-src", "connect-src"):
        assert f"{directive} 'self';" in csp
    assert "http" not in csp
    for name, kind in (
        ("dashboard.js", "text/javascript"),
        ("promotion.js", "text/javascript"),
        ("dashboard.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ):
        status, headers, raw = request(server, "GET", f"/assets/{name}")
        assert status == 200
        assert headers["Content-Type"].startswith(kind)
        assert raw == (ASSETS / name).read_bytes()
    # AND nothing else of the package (nor of the disk) is served
    for path in ("/assets/index.html", "/assets/../server.py", "/assets/%2e%2e/page.py", "/x"):
        assert request(server, "GET", path)[0] == 404
    # AND no file of the page names anything to load from elsewhere
    for asset in ASSETS.iterdir():
        # The SVG namespace is a name the browser matches, never an address it loads.
        text = asset.read_text().replace("http://www.w3.org/2000/svg", "")
        for outside in ("http:", "https:", "@import", "url(", "//cdn", "fonts."):
            assert outside not in text, (asset.name, outside)


def test_the_page_still_draws_when_the_api_fails(fake_api: FakeApi, dashboard_for: Start) -> None:
    # GIVEN an API whose cluster is down (the services fail, the ledger answers)
    answers.serve_release(fake_api)
    outage = {"error": "ClusterUnavailable", "detail": "the EKS API answered 503"}
    fake_api.routes[("GET", "/v1/services")] = (503, outage)
    server = dashboard_for(fake_api.url)
    # WHEN the page is fetched
    status, _, raw = request(server, "GET", "/")
    # THEN it is served, with the error as the API gave it in its text for no-script readers
    assert status == 200
    assert "HTTP 503 ClusterUnavailable: the EKS API answered 503" in raw.decode()


def test_the_command_serves_the_page_opens_the_browser_and_stops_on_ctrl_c(
    fake_api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a browser opener that loads what it is given, then the operator presses Ctrl-C
    answers.serve_release(fake_api)
    opened: list[tuple[str, int, str]] = []

    def browser(url: str) -> bool:
        with urllib.request.urlopen(url, timeout=30) as answer:
            opened.append((url, answer.status, answer.read().decode()))
        raise KeyboardInterrupt

    monkeypatch.setattr("webbrowser.open", browser)
    out, err = io.StringIO(), io.StringIO()
    # WHEN `bluegreen dashboard --open` runs against the API
    code = main(["--endpoint", fake_api.url, "dashboard", "--port", "0", "--open"], out, err)
    # THEN it opened its loopback page, which the API's answers filled, and stopped cleanly
    assert code == 0, err.getvalue()
    ((url, status, page),) = opened
    assert url.startswith("http://127.0.0.1:")
    assert status == 200
    assert answers.GREEN in page
    assert f"dashboard: {url}" in out.getvalue()
    assert f"API: {fake_api.url}, every call signed with SigV4 (us-west-2)" in out.getvalue()
    assert out.getvalue().endswith("dashboard stopped\n")
    # AND the first view was read through the CLI's signer, and the port is closed again
    assert {seen.path.split("?")[0] for seen in fake_api.seen} == {
        "/v1/services",
        "/v1/images",
        "/v1/deployments",
    }
    assert all(s.headers["Authorization"].startswith("AWS4-HMAC-SHA256") for s in fake_api.seen)
    port = int(url.rsplit(":", 1)[1].strip("/"))
    assert listening_addresses(port) == set()


def test_a_taken_port_is_a_one_line_error_naming_the_option(fake_api: FakeApi) -> None:
    # GIVEN something listening on the port asked for
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out, err = io.StringIO(), io.StringIO()
        # WHEN the dashboard is started there
        code = main(["--endpoint", fake_api.url, "dashboard", "--port", str(port)], out, err)
    # THEN one line says so and how to pick another, exit 2
    assert code == 2
    assert err.getvalue().count("\n") == 1
    assert f"127.0.0.1:{port}" in err.getvalue()
    assert "--port" in err.getvalue()


def test_the_cli_package_ships_the_page(tmp_path: Path) -> None:
    # WHEN the CLI's packages are built as a wheel or an install builds them (build_py,
    # from pyproject.toml's package configuration)
    # A clean copy: no egg-info of an earlier build may stand in for the configuration.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT / "cli", source / "cli", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", source)
    built = tmp_path / "lib"
    subprocess.run(
        [
            *(sys.executable, "-c", "import setuptools; setuptools.setup()", "-q"),
            *("build_py", "--build-lib", str(built)),
        ],
        check=True,
        capture_output=True,
        timeout=120,
        cwd=source,
    )
    # THEN every file of the page is there, byte for byte
    shipped = built / "bluegreen_cli" / "dashboard" / "assets"
    assert sorted(p.name for p in shipped.iterdir()) == sorted(p.name for p in ASSETS.iterdir())
    for asset in ASSETS.iterdir():
        assert (shipped / asset.name).read_bytes() == asset.read_bytes()
    # AND the built package serves them from where it is installed, not from this tree
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import bluegreen_cli.dashboard.page as page; "
            "print(page.__file__); print(len(page.asset('dashboard.js')))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(built)},
        check=True,
    )
    where, size = done.stdout.split()
    assert where.startswith(str(built))
    assert int(size) == (ASSETS / "dashboard.js").stat().st_size
