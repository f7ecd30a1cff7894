"""SigV4 signing for tests that call the local API, with botocore's signer.

The signer is botocore's, not the local gateway's own code, so a test that
passes shows the gateway accepts what AWS's SDKs send.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from local.stack import LocalStack


def signed_headers(
    method: str,
    url: str,
    *,
    access_key: tuple[str, str],
    region: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """``headers`` with the ``Authorization`` and ``X-Amz-Date`` of a SigV4 signature."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(Credentials(*access_key), "execute-api", region).add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}


def stack_key(stack: LocalStack) -> tuple[str, str]:
    """The access key the running stack's API accepts."""
    assert stack.state is not None
    return stack.state.access_key_id, stack.state.secret_access_key


def call(
    stack: LocalStack,
    method: str,
    path: str,
    body: object | None = None,
    *,
    access_key: tuple[str, str] | None = None,
) -> tuple[int, Any]:
    """One JSON call to the stack's API, signed with its key (or ``access_key``)."""
    assert stack.state is not None
    url = stack.state.api_url + path
    data = b"" if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    headers = signed_headers(
        method,
        url,
        access_key=access_key or stack_key(stack),
        region=stack.state.region,
        body=data,
        headers=headers,
    )
    request = urllib.request.Request(url, data=data or None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


class SigV4(requests.auth.AuthBase):
    """``requests`` auth that signs each prepared request (the query as SigV4 encodes it)."""

    def __init__(self, access_key: tuple[str, str], region: str) -> None:
        self.access_key = access_key
        self.region = region

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        # requests writes a space in the query as "+"; SigV4 encodes it as "%20".
        split = urlsplit(str(request.url))
        pairs = parse_qsl(split.query, keep_blank_values=True)
        request.url = urlunsplit(split._replace(query=urlencode(pairs, quote_via=quote)))
        body = request.body or b""
        raw = body.encode() if isinstance(body, str) else bytes(body)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        signed = signed_headers(
            str(request.method),
            str(request.url),
            access_key=self.access_key,
            region=self.region,
            body=raw,
            headers=headers,
        )
        request.headers.update(signed)
        return request
