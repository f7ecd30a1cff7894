"""``bluegreen manifests``: an application's Role and RoleBinding (and first objects) from its
spec, and ``deploy/kubernetes/rbac.yaml``, their rendering for the stack's default application."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from bluegreen_cli import manifests
from bluegreen_cli.commands import complete_spec
from bluegreen_cli.manifests import AppObjects

from bluegreen.config import Settings
from bluegreen.domain.apps import AppSpec, default_app_spec
from bluegreen.domain.canary_env import parse_canary_env
from bluegreen.domain.models import Colour
from local.aws import load_template
from tests.cli.conftest import Run
from tests.fake_api import FakeApi, serving

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "kubernetes" / "rbac.yaml"


def spec(**changes: Any) -> dict[str, Any]:
    """A complete spec (as ``GET /apps/{app}`` answers it) with names of its own."""
    base: dict[str, Any] = {
        "cluster": "fleet",
        "namespace": "shop",
        "repository": "shop/checkout",
        "objects": {"configMap": "checkout-state", "configMapKey": "state"},
        "router": {
            "kind": "selector",
            "ingress": {"name": "checkout-ingress"},
            "httpRoute": {"name": "checkout-route"},
        },
    }
    base.update(changes)
    return AppSpec.parse(base).to_json()


def by_kind(documents: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        found.setdefault(document["kind"], []).append(document)
    return found


def role_of(text: str) -> dict[str, Any]:
    (role,) = by_kind(list(yaml.safe_load_all(text)))["Role"]
    return role


def rule_for(role: dict[str, Any], resource: str) -> dict[str, Any] | None:
    rules = [rule for rule in role["rules"] if resource in rule["resources"]]
    assert len(rules) <= 1
    return rules[0] if rules else None


# -- the rendering -------------------------------------------------------------------


def test_a_selector_application_gets_no_router_rule_and_its_own_configmap() -> None:
    # GIVEN a selector application; WHEN its manifests are rendered
    role = role_of(manifests.render(spec(), app="checkout"))
    # THEN neither the Ingress nor the HTTPRoute rule is granted
    assert rule_for(role, "ingresses") is None
    assert rule_for(role, "httproutes") is None
    # AND the ConfigMap rule names the spec's ConfigMap only
    configmaps = rule_for(role, "configmaps")
    assert configmaps is not None
    assert configmaps["resourceNames"] == ["checkout-state"]
    assert configmaps["verbs"] == ["get", "update"]


@pytest.mark.parametrize(
    ("router", "granted", "refused", "name"),
    [
        ("gateway", "httproutes", "ingresses", "checkout-route"),
        ("alb", "ingresses", "httproutes", "checkout-ingress"),
    ],
)
def test_a_weighted_application_gets_its_routers_rule_naming_its_object(
    router: str, granted: str, refused: str, name: str
) -> None:
    routed = spec(router={**spec()["router"], "kind": router})
    role = role_of(manifests.render(routed, app="checkout"))
    rule = rule_for(role, granted)
    assert rule is not None
    assert rule["resourceNames"] == [name]
    assert rule["verbs"] == ["get", "patch"]
    assert rule_for(role, refused) is None


@pytest.mark.parametrize("router", manifests.ROUTERS)
def test_every_other_rule_is_the_shipped_roles(router: str) -> None:
    # The application's Role is the shipped one, but for the names and the router's rules.
    routed = spec(router={**spec()["router"], "kind": router})
    role = role_of(manifests.render(routed, app="checkout"))
    shipped = role_of(SHIPPED.read_text())
    named = {"configmaps", "ingresses", "httproutes"}

    def unnamed(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rules if not named & set(r["resources"])]

    assert unnamed(role["rules"]) == unnamed(shipped["rules"])


def test_names_and_namespace_follow_the_spec_and_the_application() -> None:
    # GIVEN two applications sharing namespace shop
    texts = {app: manifests.render(spec(), app=app, group="platform") for app in ("a", "b")}
    for app, text in texts.items():
        kinds = by_kind(list(yaml.safe_load_all(text)))
        # THEN each has its own Role and RoleBinding, named after it, in the spec's namespace
        assert set(kinds) == {"Role", "RoleBinding"}
        ((role,), (binding,)) = kinds["Role"], kinds["RoleBinding"]
        assert role["metadata"]["name"] == f"eks-bluegreen-{app}"
        assert role["metadata"]["namespace"] == "shop"
        assert role["metadata"]["labels"]["app.kubernetes.io/instance"] == app
        assert binding["metadata"]["name"] == f"eks-bluegreen-{app}"
        assert binding["metadata"]["namespace"] == "shop"
        # AND the binding gives that Role to the group asked for
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": f"eks-bluegreen-{app}",
        }
        assert binding["subjects"] == [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "platform"}
        ]


def test_every_rule_comes_with_why() -> None:
    text = manifests.render(spec(router={**spec()["router"], "kind": "alb"}), app="checkout")
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("  - apiGroups:")]
    assert len(starts) == len(role_of(text)["rules"])
    assert all(lines[i - 1].startswith("  # ") for i in starts)
    assert max(len(line) for line in lines if line.lstrip().startswith("#")) <= manifests.WIDTH


@pytest.mark.parametrize("router", manifests.ROUTERS)
@pytest.mark.parametrize("with_objects", [False, True])
def test_the_yaml_reads_back_as_the_objects(router: str, with_objects: bool) -> None:
    # Names YAML would read as something else than a string are quoted.
    odd = spec(
        namespace="null",
        objects={"configMap": "true", "configMapKey": "1.5", "canaryService": "yes"},
        router={"kind": router, "colourServicePort": "8080", "ingress": {"name": "0x1f"}},
    )
    text = manifests.render(odd, app="checkout", with_objects=with_objects)
    built = manifests.documents(odd, app="checkout", with_objects=with_objects)
    assert list(yaml.safe_load_all(text)) == built


def test_the_committed_rbac_yaml_is_the_default_rendering() -> None:
    # GIVEN the committed file; WHEN it is rendered again; THEN they are identical
    assert SHIPPED.read_text() == manifests.render_shipped(), (
        "deploy/kubernetes/rbac.yaml is stale: make rbac"
    )


def test_the_shipped_file_is_the_stacks_default_application_with_every_router() -> None:
    documents = list(yaml.safe_load_all(SHIPPED.read_text()))
    kinds = by_kind(documents)
    ((role,), (binding,)) = kinds["Role"], kinds["RoleBinding"]
    # THEN named as it always was, with both router rules and the default names
    assert role["metadata"]["name"] == binding["metadata"]["name"] == "eks-bluegreen"
    defaults = default_app_spec(Settings()).to_json()
    assert role["metadata"]["namespace"] == defaults["namespace"]
    for resource, name in (
        ("configmaps", defaults["objects"]["configMap"]),
        ("ingresses", defaults["router"]["ingress"]["name"]),
        ("httproutes", defaults["router"]["httpRoute"]["name"]),
    ):
        rule = rule_for(role, resource)
        assert rule is not None
        assert rule["resourceNames"] == [name]
    # AND its header still says how to apply it
    assert "#   kubectl apply -f deploy/kubernetes/rbac.yaml" in SHIPPED.read_text()


def test_the_stacks_defaults_are_the_templates_and_the_products() -> None:
    parameters = load_template()["Parameters"]
    defaults = default_app_spec(Settings())
    assert AppObjects.of(defaults.to_json()) == manifests.STACK_DEFAULTS
    assert manifests.STACK_APP == parameters["AppName"]["Default"] == Settings().application
    assert parameters["KubernetesGroup"]["Default"] == manifests.GROUP
    assert manifests.STACK_DEFAULTS.namespace == parameters["Namespace"]["Default"]


# -- --with-objects ----------------------------------------------------------------


def test_with_objects_a_selector_application_gets_what_a_new_namespace_lacks() -> None:
    text = manifests.render(spec(), app="checkout", with_objects=True)
    documents = list(yaml.safe_load_all(text))
    # THEN the Namespace comes first (kubectl creates in order), then the Role and binding
    assert [d["kind"] for d in documents[:3]] == ["Namespace", "Role", "RoleBinding"]
    assert documents[0]["metadata"]["name"] == "shop"
    kinds = by_kind(documents)
    # AND the spec's ConfigMap holds a canaryEnv the product reads as its first state
    (config_map,) = kinds["ConfigMap"]
    assert config_map["metadata"] == {
        "name": "checkout-state",
        "namespace": "shop",
        "labels": {
            "app.kubernetes.io/name": "eks-bluegreen",
            "app.kubernetes.io/instance": "checkout",
        },
    }
    env = parse_canary_env(config_map["data"]["state"], "canaryEnv", None)
    assert (env.selector, env.image, env.weights) == (Colour.BLUE, "", None)
    # AND the canary Service selects blue, production green, as the seed's do
    services = {s["metadata"]["name"]: s["spec"] for s in kinds["Service"]}
    assert set(services) == {"canary-service", "production-service"}
    assert services["canary-service"]["selector"] == {"app": "blue"}
    assert services["production-service"]["selector"] == {"app": "green"}
    seed = {
        d["metadata"]["name"]: d["spec"]
        for d in yaml.safe_load_all((ROOT / "local/cluster/seed/20-services.yaml").read_text())
    }
    assert services == seed
    # AND no Deployment: they are the team's
    assert "Deployment" not in kinds
    # AND the text says, first thing, that these are for a namespace that has none yet
    header = text.split("\napiVersion:")[0]
    assert "FOR A NAMESPACE THAT HAS NONE YET" in " ".join(
        line.lstrip("# ") for line in header.splitlines()
    )
    assert "reset canaryEnv" in " ".join(line.lstrip("# ") for line in header.splitlines())


def test_with_objects_a_gateway_application_gets_its_colour_services() -> None:
    routed = spec(
        router={
            "kind": "gateway",
            "colourServicePattern": "shop-{colour}",
            "colourServicePort": "81",
        }
    )
    kinds = by_kind(manifests.documents(routed, app="checkout", with_objects=True))
    services = {s["metadata"]["name"]: s["spec"] for s in kinds["Service"]}
    assert set(services) == {"canary-service", "production-service", "shop-blue", "shop-green"}
    assert services["shop-blue"]["selector"] == {"app": "blue"}
    assert services["shop-green"]["selector"] == {"app": "green"}
    assert services["shop-green"]["ports"] == [{"name": "http", "port": 81, "targetPort": 8080}]


def test_without_objects_nothing_but_the_rbac() -> None:
    text = manifests.render(spec(), app="checkout")
    assert {d["kind"] for d in yaml.safe_load_all(text)} == {"Role", "RoleBinding"}
    assert "NONE YET" not in text


# -- the command line ------------------------------------------------------------------


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    monkeypatch.delenv("BLUEGREEN_APP", raising=False)
    with serving(FakeApi()) as fake:
        yield fake


def app_answer(name: str, **spec_fields: Any) -> dict[str, Any]:
    """``GET /apps/{app}``'s answer (a spec as partial as a fake may give it)."""
    body = {"cluster": "fleet", "namespace": name, "repository": f"shop/{name}", **spec_fields}
    return {"name": name, "version": 2, "spec": body}


def test_the_command_prints_yaml_for_kubectl(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    # GIVEN the registry holds a gateway application
    answer = app_answer("checkout", router={"kind": "gateway", "httpRoute": {"name": "shop"}})
    api.routes[("GET", "/apps/checkout")] = (200, answer)
    # WHEN its manifests are asked for
    run = bluegreen("--endpoint", api.url, "manifests", "checkout", "--group", "platform")
    # THEN the application was read, and YAML printed that reads back as its Role and binding
    assert run.code == 0, run.err
    assert [(s.method, s.path) for s in api.seen] == [("GET", "/apps/checkout")]
    assert run.err == ""
    documents = list(yaml.safe_load_all(run.out))
    assert documents == manifests.documents(
        complete_spec(answer["spec"]), app="checkout", group="platform"
    )
    role = by_kind(documents)["Role"][0]
    assert role["metadata"] == {
        "name": "eks-bluegreen-checkout",
        "namespace": "checkout",
        "labels": {
            "app.kubernetes.io/name": "eks-bluegreen",
            "app.kubernetes.io/instance": "checkout",
            "app.kubernetes.io/component": "rbac",
        },
    }
    rule = rule_for(role, "httproutes")
    assert rule is not None
    assert rule["resourceNames"] == ["shop"]
    assert run.out.startswith("# What eks-bluegreen may do for application checkout")
    assert "#   bluegreen manifests checkout --group platform | kubectl apply -f -" in run.out


def test_the_command_with_objects(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    api.routes[("GET", "/apps/cart")] = (200, app_answer("cart"))
    run = bluegreen("--endpoint", api.url, "manifests", "cart", "--with-objects")
    assert run.code == 0, run.err
    kinds = [d["kind"] for d in yaml.safe_load_all(run.out)]
    assert kinds == ["Namespace", "Role", "RoleBinding", "ConfigMap", "Service", "Service"]


@pytest.mark.parametrize(
    ("argv", "env", "path"),
    [
        (("--app", "cart", "manifests"), None, "/apps/cart"),
        (("manifests", "--app", "cart"), None, "/apps/cart"),
        (("manifests",), "cart", "/apps/cart"),
        (("--app", "cart", "manifests", "shop"), None, "/apps/shop"),
        (("manifests",), None, f"/apps/{manifests.STACK_APP}"),
    ],
)
def test_the_application_is_app_else_the_app_option_else_the_default(
    api: FakeApi,
    bluegreen: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
    argv: tuple[str, ...],
    env: str | None,
    path: str,
) -> None:
    if env:
        monkeypatch.setenv("BLUEGREEN_APP", env)
    for name in ("cart", "shop", manifests.STACK_APP):
        api.routes[("GET", f"/apps/{name}")] = (200, app_answer(name))
    run = bluegreen("--endpoint", api.url, *argv)
    assert run.code == 0, run.err
    assert [s.path for s in api.seen] == [path]
    role = by_kind(list(yaml.safe_load_all(run.out)))["Role"][0]
    assert role["metadata"]["name"] == f"eks-bluegreen-{path.rsplit('/', 1)[1]}"


def test_json_prints_a_list_kubectl_applies(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    api.routes[("GET", "/apps/cart")] = (200, app_answer("cart"))
    run = bluegreen("--endpoint", api.url, "--json", "manifests", "cart")
    assert run.code == 0, run.err
    assert run.json["apiVersion"] == "v1"
    assert run.json["kind"] == "List"
    assert [item["kind"] for item in run.json["items"]] == ["Role", "RoleBinding"]


def test_an_unknown_application_is_an_error(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    api.routes[("GET", "/apps/nope")] = (404, {"error": "AppNotFound", "detail": "no app nope"})
    run = bluegreen("--endpoint", api.url, "manifests", "nope")
    assert run.code == 2
    assert run.out == ""
    assert run.err == "bluegreen: error: HTTP 404: AppNotFound: no app nope\n"


def test_an_unknown_default_application_says_to_name_one(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    api.routes[("GET", f"/apps/{manifests.STACK_APP}")] = (
        404,
        {"error": "AppNotFound", "detail": "no such application"},
    )
    run = bluegreen("--endpoint", api.url, "manifests")
    assert run.code == 2
    assert run.out == ""
    assert "AppNotFound" in run.err
    assert "bluegreen manifests APP" in run.err
    assert run.err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        ("manifests", "Checkout"),
        ("manifests", "cart", "--group", "Not A Group"),
        ("manifests", "cart", "extra"),
    ],
)
def test_usage_errors_send_nothing(
    api: FakeApi, bluegreen: Callable[..., Run], argv: tuple[str, ...]
) -> None:
    run = bluegreen("--endpoint", api.url, *argv)
    assert run.code == 2
    assert run.err.startswith("bluegreen: error: ")
    assert api.seen == []


def test_an_answer_that_is_no_application_is_said_so(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    api.routes[("GET", "/apps/cart")] = (200, {"name": "cart"})
    run = bluegreen("--endpoint", api.url, "manifests", "cart")
    assert run.code == 3
    assert run.err == (
        "bluegreen: error: the application's spec has no namespace: the API's answer is "
        "not an application\n"
    )


def test_the_help_says_the_objects_are_for_a_new_namespace_only(
    bluegreen: Callable[..., Run], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bluegreen("manifests", "--help")
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "ONLY FOR A NAMESPACE THAT HAS NONE YET" in text
    assert "reset canaryEnv" in text
    assert "--group GROUP" in text
