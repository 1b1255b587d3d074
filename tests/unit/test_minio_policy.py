"""The MinIO role's app policy (roles/minio/templates/etc/minio/app-policy.json.j2 with the role's defaults) grants
every S3 action the reference app makes with its own identity, and not the deletion of an object version by its id
(s3:DeleteObjectVersion in S3's policy language, not s3:DeleteObject): a stolen app key cannot destroy history. A
tenant's erasure (issue #20) deletes versions with the administrator identity (app_s3_erasure_*). MinIO itself is
not obtainable here; the policy is rendered and read the way MinIO reads it (statement resources: buckets, and
objects under bucket/*)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jinja2
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "minio"

# Each S3 API call of the app (examples/eterna_home_app/app) and the policy action MinIO checks for it; the
# resource kind is "bucket" (arn:aws:s3:::b) or "object" (arn:aws:s3:::b/*).
APP_CALLS = {
    "PutObject / multipart upload (uploads, conversions)": ("s3:PutObject", "object"),
    "AbortMultipartUpload (an upload over the limit)": ("s3:AbortMultipartUpload", "object"),
    "GetObject (downloads, conversions)": ("s3:GetObject", "object"),
    "GetObject with VersionId (export-tenant)": ("s3:GetObjectVersion", "object"),
    "DeleteObject (document and model deletion)": ("s3:DeleteObject", "object"),
    "ListObjectVersions (export-tenant)": ("s3:ListBucketVersions", "bucket"),
    "ListObjectsV2 (export and erasure of unversioned buckets)": ("s3:ListBucket", "bucket"),
}


def render_policy(actions: list[str] | None = None) -> dict:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701 - JSON, not HTML
    env.filters["to_nice_json"] = lambda value, indent=4: json.dumps(value, indent=indent, sort_keys=True)
    env.filters["regex_replace"] = lambda value, pattern, repl: re.sub(pattern, repl, value)
    env.tests["match"] = lambda value, pattern: re.match(pattern, value) is not None
    template = env.from_string((ROLE / "templates" / "etc" / "minio" / "app-policy.json.j2").read_text())
    context = {
        "minio_app_actions": defaults["minio_app_actions"] if actions is None else actions,
        "minio_buckets": [b["name"] if isinstance(b, dict) else b for b in defaults["minio_buckets"]],
    }
    return json.loads(template.render(**context))


def allowed(policy: dict, action: str, kind: str) -> bool:
    for statement in policy["Statement"]:
        resources = statement["Resource"]
        on_objects = all(r.endswith("/*") for r in resources)
        if statement["Effect"] == "Allow" and action in statement["Action"] and on_objects == (kind == "object"):
            return True
    return False


def test_policy_grants_every_action_the_app_uses():
    policy = render_policy()
    missing = [call for call, (action, kind) in APP_CALLS.items() if not allowed(policy, action, kind)]
    assert not missing, f"the app's MinIO policy lacks: {missing}"


def test_the_app_cannot_delete_object_versions():
    assert not allowed(render_policy(), "s3:DeleteObjectVersion", "object")


def test_the_check_fails_when_an_action_is_missing():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    policy = render_policy([a for a in defaults["minio_app_actions"] if a != "s3:GetObjectVersion"])
    assert not allowed(policy, "s3:GetObjectVersion", "object")
    assert allowed(
        render_policy([*defaults["minio_app_actions"], "s3:DeleteObjectVersion"]), "s3:DeleteObjectVersion", "object"
    )


def test_policy_grants_nothing_on_configuration():
    policy = render_policy()
    actions = [a for statement in policy["Statement"] for a in statement["Action"]]
    assert not [a for a in actions if re.match(r"^s3:(\*|.*Policy|PutBucket.*|DeleteBucket.*|BypassGovernance.*)$", a)]
