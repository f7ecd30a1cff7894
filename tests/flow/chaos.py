"""Faults at the deploy flow's Lambda boundary, as Step Functions sees them, and what they left.

``Chaos`` wraps the deploy-steps handler that ``dispatch_lambdas_in_process`` gives
the flow's Tasks. Each ``Fault`` names a Task state (the payload's
``attempt.state``) and fires once, on the ``entry``-th time the flow enters that
state (an entry is an attempt whose ``attempt.retry`` is 0; a retry of the same
entry is not a new one):

``before``
    the function dies before its work: nothing runs, the Task fails ``Lambda.Unknown``.
``after_retried``
    the work is done (every effect lands), then the answer is lost: the Task fails
    ``Lambda.ServiceException``, an error the ASL retries.
``after_unknown``
    the work is done, then the function dies: ``Lambda.Unknown``.
``zombie``
    the function outlives the Task's ``TimeoutSeconds``: Step Functions is answered at
    once with ``States.Timeout`` (moto's own Task timeout, a ``LambdaFunctionTimedOut``
    event), and the real handler runs that payload only when the test calls
    ``run_zombies``, after the execution has ended. This stands for a handler that
    stalled right at its start and did all of its work after the flow moved on, so a
    fence that only compares the clock with ``attempt.entered`` plus the timeout, once
    at the start, does not stop it: the zombie runs seconds after the execution ended,
    on the real clock. What it returned or raised is kept (``Zombie``).
``race``
    the work is done, then, before Step Functions is answered, another deployment
    (``Racer``) takes the lock (this one's lease treated as expired), the world is
    snapshot (``race_world``), and the Task fails ``Lambda.ServiceException`` so that
    the retry runs with the lock held by the racer.

Infrastructure faults, through botocore's ``before-call`` hooks on the handler's own
clients (``functions.deploy_steps.dependencies.aws_client``), counting the calls the
state's first attempts make from its ``entry``-th entry on (a retry's calls are not
counted, and a retry is never faulted):

``throttle``
    the ``call``-th DynamoDB ``operation`` fails with ``code``
    (``ProvisionedThroughputExceededException`` or ``ThrottlingException``), once, as it
    does when botocore's own retries are used up.
``events_down``
    EventBridge rejects the state's first ``PutEvents`` (``FailedEntryCount`` 1,
    ``InternalFailure``), as PutEvents does when the bus cannot take an event.

``World`` is what a fault may change: each colour's image, canaryEnv, the Services'
selectors, the router object (Ingress or HTTPRoute), the hook Jobs, the ledger's
record of the deployment, the verdicts of the digests in play, the lock, the
flip-back window. ``ProductionWatch`` samples what production serves while a flow
runs, so that a change that comes and goes is seen too.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.awsrequest import AWSResponse

from bluegreen.adapters.ledger import DynamoLedger
from bluegreen.adapters.promotions import DynamoPromotions
from bluegreen.config import Settings
from bluegreen.domain.models import Colour, Digest
from functions.deploy_steps import dependencies as deploy_steps_dependencies
from tests.waiting import eventually

Handler = Callable[[Any, Any], Any]

LambdaUnknown: type[Exception] = type("Lambda.Unknown", (Exception,), {})
"""The Lambda service's error for a function that died (timeout, out of memory, crash)."""

LambdaServiceException: type[Exception] = type("Lambda.ServiceException", (Exception,), {})
"""The Lambda service's error for a lost or failed answer: the ASL retries it."""


class _TaskTimedOut(Exception):
    """Raised by the wrapper for a zombie; turned into moto's own Task timeout."""


DEATHS = ("before", "after_retried", "after_unknown", "zombie", "race")
"""The ways a step's function dies, each as Step Functions sees it."""

INFRASTRUCTURE = ("throttle", "events_down")
"""Faults of the AWS services the step calls."""


@dataclass(frozen=True)
class Fault:
    """One fault, fired once, at the ``entry``-th entry into ``state``."""

    state: str
    kind: str
    entry: int = 1
    operation: str = ""
    """``throttle``: the DynamoDB operation (``PutItem``, ``UpdateItem``, ...)."""
    call: int = 1
    """``throttle``: which call of ``operation`` fails, counted over the state's first
    attempts from its ``entry``-th entry on."""
    code: str = "ProvisionedThroughputExceededException"
    """``throttle``: the error code DynamoDB answers."""

    def __post_init__(self) -> None:
        if self.kind not in DEATHS + INFRASTRUCTURE:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.kind == "throttle" and not self.operation:
            raise ValueError("a throttle names the DynamoDB operation it fails")

    def __str__(self) -> str:
        where = self.state if self.entry == 1 else f"{self.state}#{self.entry}"
        extra = f"[{self.operation}#{self.call} {self.code}]" if self.kind == "throttle" else ""
        return f"{where}:{self.kind}{extra}"


@dataclass
class Invocation:
    """One invocation of the handler through the wrapper."""

    state: str
    entry: int
    retry: int
    step: str
    started: float
    fault: Fault | None = None
    error: str = ""


@dataclass
class Zombie:
    """A handler that outlived its Task, run late by ``Chaos.run_zombies``."""

    fault: Fault
    payload: dict[str, Any]
    context: Any
    ran: bool = False
    returned: Any = None
    raised: str = ""
    """``<error class>: <message>`` when it raised."""


@dataclass(frozen=True)
class Racer:
    """Another deployment that takes the application's lock, through the ledger.

    ``take`` acquires the lock for ``holder`` on a clock a month ahead, so this
    execution's lease counts as expired and the conditional write succeeds as it would
    for a waiting deployment once a lease ran out; the racer's lease then runs a month
    past now on the real clock, so it holds for the whole test. ``release`` gives it back.
    """

    table: str
    client: Any
    application: str
    lease_seconds: int = 900
    holder: str = "racer"

    def _ledger(self, ahead: timedelta = timedelta(0)) -> DynamoLedger:
        return DynamoLedger(
            self.table, self.client, self.application, clock=lambda: datetime.now(UTC) + ahead
        )

    def take(self) -> None:
        if not self._ledger(timedelta(days=30)).acquire_lock(self.holder, self.lease_seconds):
            raise AssertionError(f"the racer could not take the lock of {self.application}")

    def release(self) -> None:
        self._ledger().release_lock(self.holder)


class Chaos:
    """The deploy-steps handler with ``faults`` injected; see the module.

    Use it as a context manager around the execution: that arms the botocore hooks
    on the handler's clients (``clients``, by default the handler's dependencies'
    ``aws_client``) and moto's Task timeout for zombies. ``snapshot`` reads the world
    a race leaves (``race_world``); ``racer`` takes the lock. ``on_first_entry`` runs
    a callable right before the first invocation of a state (the scenery of a path,
    e.g. the cluster refusing writes from then on).
    """

    def __init__(
        self,
        handler: Handler,
        faults: Iterable[Fault],
        *,
        snapshot: Callable[[], Any] | None = None,
        racer: Racer | None = None,
        on_first_entry: Mapping[str, Callable[[], None]] | None = None,
        clients: Callable[[str], Any] | None = None,
    ) -> None:
        self.handler = handler
        self.faults = tuple(faults)
        self._snapshot = snapshot
        self._racer = racer
        self._scenery = dict(on_first_entry or {})
        self._clients = clients
        self._lock = threading.Lock()
        self._local = threading.local()
        self._entries: Counter[str] = Counter()
        self._calls: Counter[tuple[str, int, str]] = Counter()
        self._pending = list(self.faults)
        self.fired: list[Fault] = []
        self.invocations: list[Invocation] = []
        self.zombies: list[Zombie] = []
        self.race_world: Any = None
        self._unhook: list[Callable[[], None]] = []

    # -- the handler ------------------------------------------------------------------
    def __call__(self, event: Any, context: Any) -> Any:
        attempt = event.get("attempt") if isinstance(event, dict) else None
        if not isinstance(attempt, dict) or not attempt.get("state"):
            return self.handler(event, context)
        state, retry = str(attempt["state"]), int(attempt.get("retry") or 0)
        with self._lock:
            if retry == 0:
                self._entries[state] += 1
            entry = self._entries[state]
            scenery = self._scenery.pop(state, None)
            invocation = Invocation(state, entry, retry, str(event.get("step")), time.monotonic())
            self.invocations.append(invocation)
            fault = None
            if retry == 0:
                fault = next(
                    (
                        f
                        for f in self._pending
                        if f.state == state and f.entry == entry and f.kind in DEATHS
                    ),
                    None,
                )
                if fault is not None:
                    self._pending.remove(fault)
                    self.fired.append(fault)
            invocation.fault = fault
        if scenery is not None:
            scenery()
        try:
            return self._invoke(event, context, invocation, fault)
        except Exception as exc:
            invocation.error = type(exc).__name__
            raise

    def _invoke(
        self, event: dict[str, Any], context: Any, invocation: Invocation, fault: Fault | None
    ) -> Any:
        if fault is None:
            return self._run(event, context, invocation)
        if fault.kind == "before":
            raise LambdaUnknown(f"chaos: the function died before its work ({fault})")
        if fault.kind == "zombie":
            self.zombies.append(Zombie(fault, json.loads(json.dumps(event)), context))
            raise _TaskTimedOut(f"chaos: the function outlived its timeout ({fault})")
        self._run(event, context, invocation)
        if fault.kind == "after_unknown":
            raise LambdaUnknown(f"chaos: the function died after its work ({fault})")
        if fault.kind == "race":
            if self._racer is not None:
                self._racer.take()
            if self._snapshot is not None:
                self.race_world = self._snapshot()
        raise LambdaServiceException(f"chaos: the answer was lost after the work ({fault})")

    def _run(self, event: dict[str, Any], context: Any, invocation: Invocation) -> Any:
        self._local.invocation = invocation
        try:
            return self.handler(event, context)
        finally:
            self._local.invocation = None

    # -- zombies ------------------------------------------------------------------------
    def run_zombies(self) -> list[Zombie]:
        """Run every zombie's payload through the real handler now; keep what it did."""
        for zombie in self.zombies:
            if zombie.ran:
                continue
            zombie.ran = True
            try:
                zombie.returned = self.handler(zombie.payload, zombie.context)
            except Exception as exc:
                zombie.raised = f"{type(exc).__name__}: {exc}"
        return self.zombies

    @property
    def unfired(self) -> list[Fault]:
        """The faults whose state was never entered as asked."""
        return list(self._pending)

    # -- infrastructure faults ------------------------------------------------------------
    def _infrastructure_fault(self, service: str, operation: str) -> Fault | None:
        invocation: Invocation | None = getattr(self._local, "invocation", None)
        if invocation is None or invocation.retry != 0:
            return None
        with self._lock:
            self._calls[invocation.state, invocation.entry, operation] += 1
            for fault in self._pending:
                if fault.state != invocation.state or invocation.entry < fault.entry:
                    continue
                made = sum(
                    count
                    for (state, entry, name), count in self._calls.items()
                    if state == fault.state and entry >= fault.entry and name == operation
                )
                hit = (
                    service == "dynamodb"
                    and fault.kind == "throttle"
                    and fault.operation == operation
                    and fault.call == made
                ) or (service == "events" and fault.kind == "events_down")
                if hit:
                    self._pending.remove(fault)
                    self.fired.append(fault)
                    invocation.fault = fault
                    return fault
        return None

    def _dynamodb_hook(self, model: Any, **_: Any) -> Any:
        fault = self._infrastructure_fault("dynamodb", model.name)
        if fault is None:
            return None
        return _answer(
            400,
            {
                "Error": {
                    "Code": fault.code,
                    "Message": f"chaos: {fault.code} on {model.name} ({fault})",
                },
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
        )

    def _events_hook(self, model: Any, params: Mapping[str, Any], **_: Any) -> Any:
        if model.name != "PutEvents":
            return None
        fault = self._infrastructure_fault("events", model.name)
        if fault is None:
            return None
        entries = params.get("Entries") or [{}]
        return _answer(
            200,
            {
                "FailedEntryCount": len(entries),
                "Entries": [
                    {"ErrorCode": "InternalFailure", "ErrorMessage": f"chaos: {fault}"}
                    for _ in entries
                ],
                "ResponseMetadata": {"HTTPStatusCode": 200},
            },
        )

    def __enter__(self) -> Chaos:
        hooks: list[tuple[str, str, Callable[..., Any]]] = []
        if any(f.kind in INFRASTRUCTURE for f in self.faults):
            hooks += [
                ("dynamodb", "before-call.dynamodb", self._dynamodb_hook),
                ("events", "before-call.eventbridge", self._events_hook),
            ]
        # The handler's own clients, as its dependencies build (and cache) them.
        clients = self._clients or deploy_steps_dependencies.aws_client
        for service, event_name, hook in hooks:
            events = clients(service).meta.events
            events.register(event_name, hook, unique_id=f"chaos-{id(self)}-{service}")
            self._unhook.append(
                functools.partial(
                    events.unregister, event_name, unique_id=f"chaos-{id(self)}-{service}"
                )
            )
        _install_timeouts()
        return self

    def __exit__(self, *_exc: object) -> None:
        for unhook in self._unhook:
            unhook()
        self._unhook.clear()
        _uninstall_timeouts()


def _answer(status: int, parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    """What a ``before-call`` hook returns to stand for the service's answer."""
    return AWSResponse("https://chaos.invalid/", status, {}, None), parsed


# -- moto's Task timeout for zombies ------------------------------------------------------

_timeout_lock = threading.Lock()
_timeout_users = 0
_original_integration: Any = None


def _install_timeouts() -> None:
    """Make the wrapper's ``_TaskTimedOut`` a Task timeout in moto's interpreter.

    The in-process dispatch turns a handler's exception into a function error named by
    its class; an error name starting ``States.`` is refused there, so the zombie's
    answer is recognised here, where moto invokes the function, and re-raised as the
    timeout moto raises itself when a Task outlives ``TimeoutSeconds``.
    """
    global _timeout_users, _original_integration
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import (
        EvalTimeoutError,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    with _timeout_lock:
        _timeout_users += 1
        if _timeout_users > 1:
            return
        original = lambda_eval_utils.execute_lambda_function_integration
        _original_integration = original

        def integration(*args: Any, **kwargs: Any) -> Any:
            try:
                return original(*args, **kwargs)
            except lambda_eval_utils.LambdaFunctionErrorException as exc:
                if _TaskTimedOut.__name__ in str(exc.payload):
                    raise EvalTimeoutError() from None
                raise

        lambda_eval_utils.execute_lambda_function_integration = integration


def _uninstall_timeouts() -> None:
    global _timeout_users, _original_integration
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    with _timeout_lock:
        _timeout_users -= 1
        if _timeout_users == 0 and _original_integration is not None:
            lambda_eval_utils.execute_lambda_function_integration = _original_integration
            _original_integration = None


# -- what a fault may change ------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """The state a fault may change, as stored (see the module)."""

    images: Mapping[str, str]
    canary_env: Mapping[str, Any]
    services: Mapping[str, str]
    router: Any
    jobs: tuple[str, ...]
    record: Mapping[str, Any] | None
    verdicts: Mapping[str, Any]
    lock: Mapping[str, Any] | None
    flip_back: Mapping[str, Any] | None

    def differences(
        self,
        later: World,
        *,
        ignore_record: Sequence[str] = (),
        names: Mapping[str, str] | None = None,
    ) -> list[str]:
        """What changed from this world to ``later``, one line per part (only the keys that
        changed, for a mapping); ``names`` shows each digest by a name."""
        changed = []
        for part in dataclasses.fields(self):
            before, after = getattr(self, part.name), getattr(later, part.name)
            if part.name == "record" and ignore_record and before and after:
                before = {k: v for k, v in before.items() if k not in ignore_record}
                after = {k: v for k, v in after.items() if k not in ignore_record}
            if before == after:
                continue
            if isinstance(before, Mapping) and isinstance(after, Mapping):
                keys = sorted(k for k in {*before, *after} if before.get(k) != after.get(k))
                before = {k: before.get(k) for k in keys}
                after = {k: after.get(k) for k in keys}
            changed.append(f"{part.name}: {_shown(before, names)} -> {_shown(after, names)}")
        return changed


def _plain(value: Any) -> Any:
    """A ledger model as JSON-like data: digests as text, enums as values, times in ISO."""
    if isinstance(value, Digest):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return value


def _shown(value: Any, names: Mapping[str, str] | None = None) -> str:
    text = json.dumps(value, default=str, sort_keys=True) if value else repr(value)
    for found, name in (names or {}).items():
        text = text.replace(found, name)
    return text[:500]


@dataclass
class WorldReader:
    """Reads the ``World`` of one application: its cluster backend and its ledger."""

    settings: Settings
    backend: Any
    client: Any
    """A DynamoDB client of the test's own (not the handler's)."""
    deployment_id: Callable[[], str | None]
    digests: Sequence[Digest]

    def image(self, colour: Colour | str) -> str:
        name = self.settings.deployment_name(Colour(str(colour)))
        deployment = self.backend.stored("deployments", name)
        containers = deployment["spec"]["template"]["spec"]["containers"]
        return str(
            next(c["image"] for c in containers if c["name"] == self.settings.container_name)
        )

    def canary_env(self) -> dict[str, Any]:
        configmap = self.backend.stored("configmaps", self.settings.configmap_name)
        raw = (configmap.get("data") or {}).get(self.settings.configmap_key)
        return dict(json.loads(raw)) if raw else {}

    def router(self) -> Any:
        ingress = self.backend.get("ingresses", self.settings.ingress_name)
        route = self.backend.get("httproutes", self.settings.http_route_name)
        return {
            "ingress": (ingress or {}).get("metadata", {}).get("annotations"),
            "httproute": (route or {}).get("spec"),
        }

    def production_weights(self, router: Mapping[str, Any]) -> dict[str, int] | None:
        """Production's weight per colour in a ``router()`` reading (None: not weighted)."""
        settings = self.settings
        names = {settings.colour_service_name(c): c.value for c in Colour}
        groups: list[Mapping[str, Any]] = []
        key = "name"
        if settings.traffic_router.value == "gateway" and router.get("httproute"):
            rules = router["httproute"].get("rules") or []
            production = settings.http_route_production_rule
            rule: Mapping[str, Any] = next((r for r in rules if r.get("name") == production), {})
            groups = rule.get("backendRefs") or []
        elif settings.traffic_router.value == "alb" and router.get("ingress"):
            action = f"alb.ingress.kubernetes.io/actions.{settings.ingress_production_action}"
            raw = router["ingress"].get(action)
            groups = json.loads(raw)["forwardConfig"]["targetGroups"] if raw else []
            key = "serviceName"
        else:
            return None
        weights = {c.value: 0 for c in Colour}
        for group in groups:
            colour = names.get(str(group.get(key)))
            if colour is not None:
                weights[colour] += int(group.get("weight", 1))
        return weights

    def _item(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.settings.ledger_table,
            Key={"PK": {"S": pk}, "SK": {"S": sk}},
            ConsistentRead=True,
        ).get("Item")
        return None if item is None else {k: next(iter(v.values())) for k, v in item.items()}

    def __call__(self) -> World:
        app = self.settings.application
        ledger = DynamoLedger(self.settings.ledger_table, self.client, app)
        identifier = self.deployment_id()
        recorded = ledger.deployment(identifier) if identifier else None
        window = DynamoPromotions(self.settings.ledger_table, self.client, app).flip_back()
        services = {}
        for name in (self.settings.canary_service_name, self.settings.production_service_name):
            found = self.backend.get("services", name)
            services[name] = ((found or {}).get("spec") or {}).get("selector", {}).get("app")
        return World(
            images={c.value: self.image(c) for c in Colour},
            canary_env=self.canary_env(),
            services=services,
            router=self.router(),
            jobs=tuple(sorted(j["metadata"]["name"] for j in self.backend.list("jobs"))),
            record=_plain(recorded) if recorded else None,
            verdicts={
                str(d): self._item(f"IMAGE#{app}#{d}", f"VERDICT#{app}") for d in self.digests
            },
            lock=self._item(f"LOCK#{app}", "LOCK"),
            flip_back=_plain(window) if window else None,
        )


@dataclass(frozen=True)
class Production:
    """What production traffic reaches at one moment, as the data plane is told.

    ``shares`` is production's share per colour: the router object's weights under
    ``alb`` and ``gateway``, all of it on the colour the production Service selects
    under ``selector``. ``images`` is what each colour runs.
    """

    shares: Mapping[str, int]
    images: Mapping[str, str]

    @property
    def serving(self) -> set[str]:
        """The colours production traffic reaches."""
        return {colour for colour, share in self.shares.items() if share > 0}


class ProductionWatch:
    """Samples what production serves every few milliseconds while a flow runs."""

    def __init__(self, read: WorldReader, period: float = 0.005) -> None:
        self._read, self._period = read, period
        self.seen: list[Production] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="production-watch")

    def sample(self) -> Production:
        read = self._read
        shares = read.production_weights(read.router())
        if shares is None:
            service = read.backend.get("services", read.settings.production_service_name)
            selects = ((service or {}).get("spec") or {}).get("selector", {}).get("app")
            shares = {c.value: 100 if c.value == selects else 0 for c in Colour}
        return Production(shares=shares, images={c.value: read.image(c) for c in Colour})

    def _keep(self) -> None:
        state = self.sample()
        if not self.seen or self.seen[-1] != state:
            self.seen.append(state)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._keep()
            except Exception as exc:  # kept, so that a watch that saw nothing says why
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(self._period)

    def __enter__(self) -> ProductionWatch:
        self._keep()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._keep()


@contextmanager
def handler_for(router: Any, handler: Handler) -> Iterator[None]:
    """Route the flow's Tasks to ``handler`` while the block runs (``harness.Router``)."""
    previous = router.target
    router.target = handler
    try:
        yield
    finally:
        router.target = previous


def wait_until(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """``check()`` once it is truthy, polled every few milliseconds, within ``timeout``."""
    return eventually(what, check, timeout, every=0.01)


__all__ = [
    "DEATHS",
    "INFRASTRUCTURE",
    "Chaos",
    "Fault",
    "Invocation",
    "LambdaServiceException",
    "LambdaUnknown",
    "Production",
    "ProductionWatch",
    "Racer",
    "World",
    "WorldReader",
    "Zombie",
    "handler_for",
    "wait_until",
]
