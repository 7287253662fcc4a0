"""The deployment artifacts hold to their contract: the Dockerfile and the SAM template lint
clean (hadolint, cfn-lint, the real binaries from the venv), the image's CMD names the Lambda
handler that exists, the function role is least-privilege on the bucket's users/ prefix, CORS is
done once, and every variable the artifacts set is one the service reads."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from photovault_server.settings import Settings, variables

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DOCKERFILE = ROOT / "Dockerfile"
TEMPLATE = ROOT / "deploy" / "template.yaml"
HANDLER = "photovault_server.lambda_handler.handler"
OBJECT_RESOURCE = {"Fn::Sub": "${PhotosBucket.Arn}/users/*"}
BUCKET_RESOURCE = {"Fn::GetAtt": ["PhotosBucket", "Arn"]}
# Read by nobody: changing it makes CloudFormation update the function (re-resolving secrets).
DEPLOY_ONLY_VARIABLES = {"PHOTOVAULT_CONFIG_REVISION"}


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    binary = BIN / tool
    assert binary.exists(), f"{binary} is missing: it comes with the [dev] extra (make test)"
    return subprocess.run(
        [str(binary), *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


# --- parsing ------------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation's short tags (!Ref, !Sub, !GetAtt, !If, …) as the
    long forms ({"Ref": …}, {"Fn::Sub": …}, {"Fn::GetAtt": [resource, attribute]}, …)."""


def _construct_cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_cfn_tag)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # noqa: S506 (SafeLoader subclass)
    assert isinstance(loaded, dict)
    return loaded


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A policy's statements, with both branches of any Fn::If (AWS::NoValue dropped)."""
    found: list[dict[str, Any]] = []
    for statement in _as_list(document["Statement"]):
        if isinstance(statement, dict) and "Fn::If" in statement:
            branches = statement["Fn::If"][1:]
            found.extend(b for b in branches if isinstance(b, dict) and "Effect" in b)
        else:
            found.append(statement)
    return found


def _allowed_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for role in _resources(template, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            statements.extend(_statements(policy["PolicyDocument"]))
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy"):
        for resource in _resources(template, kind).values():
            statements.extend(_statements(resource["Properties"]["PolicyDocument"]))
    return [s for s in statements if s["Effect"] == "Allow"]


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), comments dropped and continuation lines joined."""
    lines = [line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")]
    instructions = []
    for line in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines():
        keyword, _, rest = line.strip().partition(" ")
        if keyword:
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def _final_stage(dockerfile: str) -> list[tuple[str, str]]:
    instructions = _instructions(dockerfile)
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def _known_variables() -> set[str]:
    return set(variables(Settings))


# --- lint ---------------------------------------------------------------------------------


def test_hadolint_is_clean() -> None:
    result = _run("hadolint", "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_is_clean() -> None:
    result = _run("cfn-lint", str(TEMPLATE.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr


# --- Dockerfile ---------------------------------------------------------------------------


def test_cmd_names_exactly_the_lambda_handler() -> None:
    stage = _final_stage(DOCKERFILE.read_text())
    cmds = [args for keyword, args in stage if keyword == "CMD"]
    assert len(cmds) == 1, cmds
    assert json.loads(cmds[0]) == [HANDLER]
    assert not [args for keyword, args in stage if keyword == "ENTRYPOINT"], (
        "keep the base image's entrypoint (the Runtime Interface Client)"
    )


def test_the_handler_the_cmd_names_exists() -> None:
    module, _, function = HANDLER.rpartition(".")
    source = ROOT / "server" / (module.replace(".", "/") + ".py")
    tree = ast.parse(source.read_text())
    handlers = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function
    ]
    assert len(handlers) == 1, f"no module-level {function}() in {source}"
    assert isinstance(handlers[0], ast.FunctionDef), "Lambda calls the handler synchronously"
    assert [a.arg for a in handlers[0].args.args] == ["event", "context"]


def test_image_is_multi_stage_on_the_lambda_base_without_dev_extras_or_secrets() -> None:
    text = DOCKERFILE.read_text()
    assert "ARG BASE_IMAGE=public.ecr.aws/lambda/python:3.11" in text
    instructions = _instructions(text)
    froms = [args.split()[0] for keyword, args in instructions if keyword == "FROM"]
    assert len(froms) >= 2
    assert set(froms) == {"${BASE_IMAGE}"}
    assert not [args for _, args in instructions if "[dev]" in args or ".[" in args]
    stage = _final_stage(text)
    assert ("USER", "65534:65534") in stage
    env = " ".join(args for keyword, args in stage if keyword == "ENV")
    env_names = set(re.findall(r"\b([A-Z][A-Z0-9_]*)=", env))
    baked = env_names & {"DATABASE_URL", "REDIS_URL", "PHOTOVAULT_BUCKET"}
    assert not baked, f"configuration baked into the image: {baked}"
    assert not {n for n in env_names if re.search("SECRET|PASSWORD|TOKEN|KEY", n)}
    unknown = {n for n in env_names if n.startswith("PHOTOVAULT_")} - _known_variables()
    assert not unknown, f"the image sets variables the service does not read: {unknown}"


# --- template -----------------------------------------------------------------------------


def test_no_wildcard_grants(template: dict[str, Any]) -> None:
    for statement in _allowed_statements(template):
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"wildcard action {action!r} in {statement.get('Sid')}"


def _cloudfront_grants(statement: dict[str, Any]) -> bool:
    return bool(statement.get("Principal") == {"Service": "cloudfront.amazonaws.com"})


def _bucket_policy_statements(template: dict[str, Any]) -> list[Any]:
    (policy,) = _resources(template, "AWS::S3::BucketPolicy").values()
    return _as_list(policy["Properties"]["PolicyDocument"]["Statement"])


def test_the_cdn_serves_private_objects_only_with_a_valid_signature(
    template: dict[str, Any],
) -> None:
    """Object keys appear in every presigned URL, so a CDN that may read users/ without asking
    for a signature serves private (and deleted) photos to anyone who once saw a URL. CloudFront
    may read public/ alone, unless the signing key is configured: then it may read users/ too,
    but the distribution's only behaviour for users/* requires a signature from the trusted
    key group, and its cache key leaves the signature parameters out."""
    grants = [s for s in _allowed_statements(template) if _cloudfront_grants(s)]
    assert grants, "the CDN option is gone: drop this test with it"
    resources = set()
    for statement in grants:
        assert _as_list(statement["Action"]) == ["s3:GetObject"], statement
        (resource,) = _as_list(statement["Resource"])
        resources.add(resource["Fn::Sub"])
        assert "Fn::If" not in json.dumps(statement.get("Condition", {})), statement
    assert resources == {"${PhotosBucket.Arn}/public/*", "${PhotosBucket.Arn}/users/*"}
    # users/ is granted only under the condition that creates the signed behaviour.
    for raw in _bucket_policy_statements(template):
        if "Fn::If" in raw and "users/*" in json.dumps(raw):
            assert raw["Fn::If"][0] == "CdnSignsPrivate", raw
    distribution = template["Resources"]["PublicCdn"]["Properties"]["DistributionConfig"]
    condition, behaviours, otherwise = distribution["CacheBehaviors"]["Fn::If"]
    assert (condition, otherwise) == ("CdnSignsPrivate", {"Ref": "AWS::NoValue"})
    private = [b for b in behaviours if b["PathPattern"].startswith("users")]
    assert [b["PathPattern"] for b in private] == ["users/*"]
    assert private[0]["TrustedKeyGroups"] == [{"Ref": "CdnKeyGroup"}]
    assert private[0]["ViewerProtocolPolicy"] == "https-only"
    assert "TrustedKeyGroups" not in distribution["DefaultCacheBehavior"]
    resources_ = template["Resources"]
    assert resources_["CdnKeyGroup"]["Condition"] == "CdnSignsPrivate"
    cache_key = resources_["PrivatePhotosCachePolicy"]["Properties"]["CachePolicyConfig"]
    in_key = cache_key["ParametersInCacheKeyAndForwardedToOrigin"]
    assert in_key["QueryStringsConfig"] == {"QueryStringBehavior": "none"}
    assert private[0]["CachePolicyId"] == {"Ref": "PrivatePhotosCachePolicy"}
    # The key group holds the active key and, during a rotation, the previous one.
    items = resources_["CdnKeyGroup"]["Properties"]["KeyGroupConfig"]["Items"]
    assert items[0] == {"Ref": "CdnPublicKey"}
    assert items[1]["Fn::If"][1] == {"Ref": "CdnPreviousPublicKey"}
    # The service signs with the active key, and public URLs never default to the CDN.
    environment = template["Resources"]["PhotoVaultFunction"]["Properties"]["Environment"]
    variables = environment["Variables"]
    assert variables["PHOTOVAULT_CDN_KEY_PAIR_ID"]["Fn::If"][1] == {"Ref": "CdnPublicKey"}
    assert "PublicCdn" not in json.dumps(variables["PHOTOVAULT_PUBLIC_BASE_URL"])


# Presigned URLs, ConfirmUpload, DeletePhoto, and multipart uploads (abort, list parts)...
OBJECT_ACTIONS = {
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
}
# ...HeadObject's 404, and the sweep's listing of open multipart uploads.
BUCKET_ACTIONS = {"s3:ListBucket", "s3:ListBucketMultipartUploads"}


def test_object_actions_are_scoped_to_users_prefix(template: dict[str, Any]) -> None:
    object_actions: set[str] = set()
    for statement in _allowed_statements(template):
        if _cloudfront_grants(statement):
            continue  # test_the_cdn_serves_private_objects_only_with_a_valid_signature
        actions = _as_list(statement["Action"])
        for action in actions:
            if action.startswith("s3:") and action not in BUCKET_ACTIONS:
                object_actions.add(action)
                assert _as_list(statement["Resource"]) == [OBJECT_RESOURCE], statement
            elif action in BUCKET_ACTIONS:
                assert _as_list(statement["Resource"]) == [BUCKET_RESOURCE], statement
    # What presigned URLs, ConfirmUpload and DeletePhoto need, and nothing else.
    role = template["Resources"]["FunctionRole"]["Properties"]
    role_actions = {
        action
        for policy in role["Policies"]
        for statement in _statements(policy["PolicyDocument"])
        for action in _as_list(statement["Action"])
        if action.startswith("s3:")
    }
    assert role_actions == OBJECT_ACTIONS | BUCKET_ACTIONS
    assert object_actions <= OBJECT_ACTIONS


def test_bucket_blocks_public_access_and_allows_presigned_browser_uploads(
    template: dict[str, Any],
) -> None:
    bucket = template["Resources"]["PhotosBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    (rule,) = bucket["CorsConfiguration"]["CorsRules"]
    assert set(rule["AllowedMethods"]) == {"PUT", "GET", "HEAD"}
    assert rule["AllowedOrigins"] == {"Ref": "CorsOrigins"}
    assert {h.lower() for h in rule["AllowedHeaders"]} >= {
        "content-type",
        "if-none-match",
        "x-amz-checksum-sha256",
    }
    assert rule["ExposedHeaders"] == ["ETag"]
    lifecycle = bucket["LifecycleConfiguration"]["Rules"]
    assert any("AbortIncompleteMultipartUpload" in r for r in lifecycle)


def test_front_doors_leave_cors_to_the_service(template: dict[str, Any]) -> None:
    for url in _resources(template, "AWS::Lambda::Url").values():
        assert "Cors" not in url["Properties"]
        assert url["Properties"]["AuthType"] == "NONE"
    for api in _resources(template, "AWS::ApiGatewayV2::Api").values():
        assert "CorsConfiguration" not in api["Properties"]
    for function in _resources(template, "AWS::Serverless::Function").values():
        assert "FunctionUrlConfig" not in function["Properties"]
    variables = template["Resources"]["PhotoVaultFunction"]["Properties"]["Environment"][
        "Variables"
    ]
    assert variables["PHOTOVAULT_CORS_ORIGINS"] == {"Fn::Join": [",", {"Ref": "CorsOrigins"}]}


def test_function_environment_uses_the_operator_contract(template: dict[str, Any]) -> None:
    function = template["Resources"]["PhotoVaultFunction"]["Properties"]
    assert function["PackageType"] == "Image"
    assert "ImageConfig" not in function, "the image's CMD names the handler"
    variables = function["Environment"]["Variables"]
    unknown = set(variables) - _known_variables() - DEPLOY_ONLY_VARIABLES
    assert not unknown, f"the template sets variables the service does not read: {unknown}"
    assert "AWS_REGION" not in variables, "reserved: Lambda sets it"
    for name in ("DATABASE_URL", "REDIS_URL", "PHOTOVAULT_JWT_SECRET"):
        rendered = json.dumps(variables[name])
        assert "{{resolve:secretsmanager:" in rendered, f"{name} must come from Secrets Manager"
    assert {"PHOTOVAULT_BUCKET", "PHOTOVAULT_DB_STATEMENT_CACHE_SIZE"} <= set(variables)
