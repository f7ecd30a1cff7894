"""Suite-wide guards: fake AWS credentials and no network beyond loopback.

Every test talks to moto (in-process or its server on 127.0.0.1) and to the
cluster emulator on 127.0.0.1; a connection anywhere else is a bug in the test
or the code, so it fails loudly instead of hanging on the closed network.
"""

from __future__ import annotations

import socket

import pytest

pytest_plugins = ["local.cluster.testing", "local.kube.testing", "tests.backends"]


def pytest_configure(config: pytest.Config) -> None:
    from local.dynamodb import atomic_dynamodb_requests

    atomic_dynamodb_requests()
    config.addinivalue_line(
        "markers", "emulator_only: a test of what only the emulator can do (faults, counts)"
    )
    config.addinivalue_line(
        "markers", "emulator_speed(n): paced_backend runs the emulator's clock n times faster"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    from tests.backends import parametrize_backends

    parametrize_backends(metafunc)


_LOOPBACK_PREFIXES = ("127.", "::1", "localhost")
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check(address: object) -> None:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host.startswith(_LOOPBACK_PREFIXES):
        return
    if isinstance(host, (bytes, str)) and not isinstance(address, tuple):
        return  # AF_UNIX paths
    raise ConnectionRefusedError(f"network blocked in tests: connect to {address!r}")


def _guarded_connect(self: socket.socket, address: object) -> None:
    _check(address)
    return _real_connect(self, address)  # type: ignore[arg-type]


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _check(address)
    return _real_connect_ex(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)


@pytest.fixture(autouse=True)
def _aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-west-2",
        "AWS_REGION": "us-west-2",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
