#!/usr/bin/env bash
# Static validation of what is deployed: the SAM template (sam validate --lint, cfn-lint),
# every state machine definition (asl-validator, after the template's
# DefinitionSubstitutions are applied the way CloudFormation applies them), and the shared
# layer's pinned requirements (they must install for the Lambda runtime and architecture).
#
# Run by `make validate` (part of `make test`), which installs .venv, .venv-sam and
# node_modules first. Needs no AWS account; the network is used only by pip to reach the
# package index, and only when the layer's requirements changed since the last check.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
SAM=.venv-sam/bin/sam
TEMPLATE=template.yaml
LAYER_REQUIREMENTS=layers/bluegreen/requirements.txt
# Lambda's python3.11 runtime on arm64 (Amazon Linux 2, glibc 2.26): wheels must be
# manylinux2014 (glibc 2.17) or older, CPython 3.11 ABI.
LAMBDA_PLATFORM=manylinux2014_aarch64
LAMBDA_PYTHON=3.11

export SAM_CLI_TELEMETRY=0
# sam/cfn-lint resolve partitions and regional endpoints; none of them is contacted.
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step() { printf '\n== %s\n' "$*"; }

# --language-extensions: SAM CLI expands AWS::LanguageExtensions (the fleet's Fn::ForEach
# of access entries) only when asked; CloudFormation always does.
step "sam validate ($TEMPLATE): the SAM transform itself"
# The real SAM translator (cfn-lint checks SAM resources against schemas without
# transforming them). Credentials are fake so that nothing can reach an account.
env -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID=validate AWS_SECRET_ACCESS_KEY=validate \
  "$SAM" validate --language-extensions --template-file "$TEMPLATE" --region "$AWS_DEFAULT_REGION" \
  > "$work/sam-validate.log" 2>&1 || { cat "$work/sam-validate.log" >&2; exit 1; }
grep -v "not available in Feature Toggle Config" "$work/sam-validate.log" || true

step "sam validate --lint ($TEMPLATE)"
"$SAM" validate --lint --language-extensions --template-file "$TEMPLATE" --region "$AWS_DEFAULT_REGION"

step "cfn-lint $TEMPLATE"
.venv/bin/cfn-lint "$TEMPLATE"
echo "cfn-lint: no findings"

step "asl-validator statemachine/*.asl.json (DefinitionSubstitutions applied)"
shopt -s nullglob
definitions=(statemachine/*.asl.json)
shopt -u nullglob
if [ "${#definitions[@]}" -eq 0 ]; then
  echo "no statemachine/*.asl.json found: the template's DefinitionUri points at one" >&2
  exit 1
fi
# Render each definition as CloudFormation would: every ${Name} replaced by a value of the
# shape its DefinitionSubstitutions entry yields (a Lambda ARN for !GetAtt Function.Arn...).
# A placeholder the template does not substitute is an error here, as it is at deploy time.
"$PY" - "$TEMPLATE" "$work" "${definitions[@]}" <<'PYTHON'
import json
import re
import sys
from pathlib import Path

from cfnlint.decode import cfn_yaml

template_path, out_dir, *definitions = sys.argv[1:]
template = cfn_yaml.load(template_path)
resources = template.get("Resources", {})
parameters = template.get("Parameters", {})
PARTITION, REGION, ACCOUNT = "aws", "us-east-1", "123456789012"

ARN_OF_TYPE = {
    "AWS::Serverless::Function": "arn:{p}:lambda:{r}:{a}:function:{n}",
    "AWS::Lambda::Function": "arn:{p}:lambda:{r}:{a}:function:{n}",
    "AWS::Serverless::StateMachine": "arn:{p}:states:{r}:{a}:stateMachine:{n}",
    "AWS::DynamoDB::Table": "arn:{p}:dynamodb:{r}:{a}:table/{n}",
    "AWS::SQS::Queue": "arn:{p}:sqs:{r}:{a}:{n}",
    "AWS::SNS::Topic": "arn:{p}:sns:{r}:{a}:{n}",
    "AWS::Events::EventBus": "arn:{p}:events:{r}:{a}:event-bus/{n}",
}
REF_IS_ARN = {"AWS::Serverless::StateMachine", "AWS::SNS::Topic"}


def sample(value: object, key: str) -> str:
    """A value of the shape CloudFormation would substitute for ``value``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), = value.items()
        if function == "Ref":
            if argument in parameters:
                return str(parameters[argument].get("Default", argument))
            if argument in resources:
                # Ref gives an ARN for these types and a name for the others.
                kind = resources[argument]["Type"]
                pattern = ARN_OF_TYPE[kind] if kind in REF_IS_ARN else "{n}"
                return pattern.format(p=PARTITION, r=REGION, a=ACCOUNT, n=argument)
        if function == "Fn::GetAtt":
            name, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            kind = resources.get(name, {}).get("Type", "")
            if attribute == "Arn" and kind in ARN_OF_TYPE:
                return ARN_OF_TYPE[kind].format(p=PARTITION, r=REGION, a=ACCOUNT, n=name)
            return f"{name}-{attribute}"
        if function == "Fn::Sub" and isinstance(argument, str):
            return re.sub(r"\$\{[^}]+\}", "x", argument)
    sys.exit(f"DefinitionSubstitutions.{key}: cannot render {value!r}")


substitutions: dict[str, dict[str, str]] = {}
for name, resource in resources.items():
    # An Fn::ForEach (a list) makes access entries, never a state machine.
    if not isinstance(resource, dict) or resource.get("Type") != "AWS::Serverless::StateMachine":
        continue
    props = resource.get("Properties", {})
    uri = props.get("DefinitionUri")
    if isinstance(uri, str):
        raw = props.get("DefinitionSubstitutions", {})
        substitutions[str(Path(uri))] = {k: sample(v, k) for k, v in raw.items()}

failed = False
for definition in definitions:
    text = Path(definition).read_text()
    values = substitutions.get(str(Path(definition)), {})
    used = set(re.findall(r"\$\{([^}]+)\}", text))
    missing = sorted(used - values.keys())
    if missing:
        print(f"{definition}: no DefinitionSubstitutions for {', '.join(missing)}", file=sys.stderr)
        failed = True
        continue
    rendered = re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], text)
    json.loads(rendered)  # a JSON error names the line before asl-validator does
    Path(out_dir, Path(definition).name).write_text(rendered)
    used_text = ", ".join(sorted(used)) or "none"
    print(f"{definition}: substitutions {used_text}")
sys.exit(1 if failed else 0)
PYTHON
for definition in "${definitions[@]}"; do
  npx --no-install asl-validator --json-path "$work/$(basename "$definition")" \
    || { echo "asl-validator rejected $definition" >&2; exit 1; }
done

step "layer requirements install for Lambda ($LAMBDA_PLATFORM, CPython $LAMBDA_PYTHON)"
# pip download resolves and fetches every pinned wheel for the target platform, so a
# pin without an aarch64 wheel fails here, not at `sam build` or at cold start. The
# result is cached per content of the requirements file.
digest="$(sha256sum "$LAYER_REQUIREMENTS" | cut -c1-16)"
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/eks-bluegreen/layer-platform"
stamp="$cache_dir/$digest-$LAMBDA_PLATFORM-py$LAMBDA_PYTHON.txt"
if [ -s "$stamp" ]; then
  echo "unchanged since the last check ($stamp):"
else
  "$PY" -m pip download --quiet --disable-pip-version-check \
    --only-binary=:all: --platform "$LAMBDA_PLATFORM" \
    --python-version "$LAMBDA_PYTHON" --implementation cp \
    -r "$LAYER_REQUIREMENTS" -d "$work/wheels" \
    2> >(grep -v "^WARNING: Location '" >&2)
  mkdir -p "$cache_dir"
  (cd "$work/wheels" && ls -1) > "$stamp.tmp"
  mv "$stamp.tmp" "$stamp"
fi
sed 's/^/  /' "$stamp"
echo "$(wc -l < "$stamp") wheels for $LAMBDA_PLATFORM / cp${LAMBDA_PYTHON/./}"

step "validate: all checks passed"
