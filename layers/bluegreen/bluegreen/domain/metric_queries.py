"""Where a promotion reads the canary's metrics, and the PromQL it asks Prometheus.

``MetricProvider``
    ``cloudwatch`` (the ALB's per-target-group metrics) or ``prometheus`` (PromQL
    over the proxy's metrics: Amazon Managed Service for Prometheus, or a
    self-hosted one).
``QueryTemplate``
    a PromQL query with placeholders for the colour being judged and the window:
    ``{{namespace}}``, ``{{service}}`` (the colour's Service, ``ColourServicePattern``),
    ``{{port}}`` (``ColourServicePort``), ``{{colour}}`` and ``{{window}}`` (a range
    such as ``60s``, the window of the reading). Double braces, because PromQL's
    label matchers use single ones.

The defaults read Traefik v3's proxy metrics for a Gateway API HTTPRoute backend:
Traefik names such a backend's service ``<namespace>-<Service>-http-<port>`` (its
Kubernetes Gateway provider, normalised) and labels its metrics with it, suffixed
``@kubernetesgateway``.

Plain types and their parsing, no I/O.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bluegreen.domain.errors import InvalidInput


class MetricProvider(enum.StrEnum):
    """Where the canary's requests, errors and latency are read."""

    CLOUDWATCH = "cloudwatch"
    PROMETHEUS = "prometheus"

    @classmethod
    def parse(cls, value: object, *, field_name: str = "metricProvider") -> MetricProvider:
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise InvalidInput(
                field_name, f"must be one of {', '.join(m.value for m in cls)}, got {value!r}"
            ) from None


PLACEHOLDERS = ("namespace", "service", "port", "colour", "window")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

DEFAULT_REQUESTS_QUERY = (
    "sum(increase(traefik_service_requests_total"
    '{service="{{namespace}}-{{service}}-http-{{port}}@kubernetesgateway"}[{{window}}]))'
)
"""The requests the colour's backend answered in the window."""

DEFAULT_ERROR_RATIO_QUERY = (
    "(sum(increase(traefik_service_requests_total"
    '{service="{{namespace}}-{{service}}-http-{{port}}@kubernetesgateway",code=~"5.."}'
    "[{{window}}])) or vector(0))"
    " / sum(increase(traefik_service_requests_total"
    '{service="{{namespace}}-{{service}}-http-{{port}}@kubernetesgateway"}[{{window}}]))'
)
"""The share (0 to 1) of those answered 5xx. ``or vector(0)``: a backend that never
answered 5xx has no 5xx series at all, and that is a ratio of 0, not a missing one."""

DEFAULT_P99_QUERY = (
    "histogram_quantile(0.99, sum by (le) (increase(traefik_service_request_duration_seconds_bucket"
    '{service="{{namespace}}-{{service}}-http-{{port}}@kubernetesgateway"}[{{window}}])))'
)
"""The 99th percentile of the backend's answer time in the window, in seconds."""


@dataclass(frozen=True)
class QueryTemplate:
    """A PromQL query with ``{{placeholder}}``s; ``parameter`` names where it is configured."""

    text: str
    parameter: str

    @classmethod
    def parse(cls, text: str, parameter: str) -> QueryTemplate:
        """``InvalidInput`` naming ``parameter`` when the text is empty or names a placeholder
        that does not exist (a typo would otherwise reach Prometheus as literal braces)."""
        text = text.strip()
        if not text:
            raise InvalidInput(parameter, "must be a PromQL query")
        unknown = sorted({name for name in _PLACEHOLDER.findall(text) if name not in PLACEHOLDERS})
        if unknown:
            raise InvalidInput(
                parameter,
                f"names {{{{{unknown[0]}}}}}, which is not a placeholder; the placeholders are "
                + ", ".join(f"{{{{{name}}}}}" for name in PLACEHOLDERS),
            )
        return cls(text, parameter)

    def render(self, values: Mapping[str, str]) -> str:
        """The query with every placeholder replaced by its value."""
        return _PLACEHOLDER.sub(lambda match: values[match.group(1)], self.text)


def window_range(seconds: float) -> str:
    """A PromQL range covering ``seconds`` (whole seconds, at least one): ``60s``."""
    return f"{max(1, math.ceil(seconds))}s"
