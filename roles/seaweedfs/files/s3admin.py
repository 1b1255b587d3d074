#!/usr/bin/python3
"""Converge S3 buckets to their desired state: exist, versioning, non-current version expiry, bucket policy.

The S3 calls go through boto3 (Debian's python3-boto3, installed by the role). The credentials come from stdin
(access key, then secret key, one per line; an environment variable or an argument would show in the run's
verbose output). Prints one JSON line ``{"changed": bool, "actions": [...]}``, or ``{"failed": true, "msg": ...}``
with exit status 1; with --check it reports what it would change and changes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

RULE_ID = "eterna-noncurrent-expiry"
# Error codes meaning "this bucket has no such configuration" (S3 answers 404 with one of these).
ABSENT = {"NoSuchLifecycleConfiguration", "NoSuchBucketPolicy", "NoSuchBucket", "404", "NotFound"}


def _code(exc: ClientError) -> str:
    """The S3 error code of ``exc`` (e.g. ``NoSuchBucketPolicy``), or its HTTP status as a string."""
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def client(endpoint: str, region: str, cafile: str | None, access: str, secret: str) -> Any:
    """A boto3 S3 client for ``endpoint`` with path-style addressing, verifying TLS against ``cafile``."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        verify=cafile or True,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
    )


def current_expiry_days(s3: Any, bucket: str) -> int:
    """Non-current days of our lifecycle rule (``RULE_ID``), 0 when the bucket has no such enabled rule.

    :raises ClientError: for any error but "no lifecycle configuration".
    """
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as exc:
        if _code(exc) in ABSENT:
            return 0
        raise
    for rule in rules:
        if rule.get("ID") == RULE_ID and rule.get("Status") == "Enabled":
            return int(rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays", 0))
    return 0


def _as_list(value: Any) -> list:
    return sorted(value) if isinstance(value, list) else [value]


def normalize_policy(doc: dict) -> list[str]:
    """Statements of a policy document in a comparable form.

    Servers may turn one-element lists into strings and reorder keys; each statement becomes sorted JSON with its
    Action, NotAction, Resource, NotResource and Principal values as sorted lists.

    :param doc: a bucket policy document (``{"Statement": [...]}``); an empty dict means no policy.
    :returns: the sorted list of normalised statements.
    """
    out = []
    for statement in doc.get("Statement", []):
        st = dict(statement)
        for field in ("Action", "NotAction", "Resource", "NotResource"):
            if field in st:
                st[field] = _as_list(st[field])
        if isinstance(st.get("Principal"), dict):
            st["Principal"] = {k: _as_list(v) for k, v in st["Principal"].items()}
        out.append(json.dumps(st, sort_keys=True))
    return sorted(out)


def converge_policy(s3: Any, bucket: str, policy: str, check: bool) -> list[str]:
    """Set the bucket policy ``policy`` (JSON; ``{bucket}`` stands for the name) unless it is already in force."""
    wanted = json.loads(policy.replace("{bucket}", bucket))
    try:
        have = json.loads(s3.get_bucket_policy(Bucket=bucket).get("Policy") or "{}")
    except ClientError as exc:
        if _code(exc) not in ABSENT:
            raise
        have = {}
    if normalize_policy(have) == normalize_policy(wanted):
        return []
    if not check:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(wanted))
    return [f"set the bucket policy of {bucket}"]


def converge(s3: Any, bucket: str, versioning: str, days: int, check: bool) -> list[str]:
    """Create ``bucket`` if needed, then set its versioning and its non-current version expiry.

    :param versioning: ``Enabled``, ``Suspended`` or empty (leave as is).
    :param days: non-current version expiry in days; 0 removes the lifecycle configuration.
    :param check: report only.
    :returns: the actions taken (or that would be taken), in words.
    :raises ClientError: when the store refuses a call (other than "not configured yet").
    """
    actions: list[str] = []
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if _code(exc) not in ABSENT:
            raise
        actions.append(f"create bucket {bucket}")
        if check:
            return actions + [f"configure bucket {bucket}"]
        s3.create_bucket(Bucket=bucket)

    current = s3.get_bucket_versioning(Bucket=bucket).get("Status", "")
    if versioning and current != versioning:
        actions.append(f"set versioning of {bucket} to {versioning} (was {current or 'unset'})")
        if not check:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": versioning})

    have = current_expiry_days(s3, bucket)
    if have != days:
        actions.append(f"set non-current version expiry of {bucket} to {days} days (was {have})")
        if not check and days > 0:
            rule = {
                "ID": RULE_ID,
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "NoncurrentVersionExpiration": {"NoncurrentDays": days},
            }
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rule]})
        elif not check:
            s3.delete_bucket_lifecycle(Bucket=bucket)
    return actions


def main() -> int:
    """Command line entry point; see the module docstring. Exit status 0 on success, 1 on an S3 error, 2 on usage."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--cafile")
    parser.add_argument("--versioning", choices=["Enabled", "Suspended", ""], default="")
    parser.add_argument("--noncurrent-days", type=int, default=0)
    parser.add_argument("--policy", default="", help='bucket policy JSON; "{bucket}" stands for the bucket name')
    parser.add_argument("--check", action="store_true")
    parser.add_argument("buckets", nargs="+")
    args = parser.parse_args()
    lines = sys.stdin.read().splitlines()
    access, secret = (lines + ["", ""])[:2]
    if not access or not secret:
        print("stdin must hold the access key and the secret key, one per line", file=sys.stderr)
        return 2
    s3 = client(args.endpoint, args.region, args.cafile, access, secret)
    actions: list[str] = []
    try:
        for bucket in args.buckets:
            done = converge(s3, bucket, args.versioning, args.noncurrent_days, args.check)
            actions += done
            if args.policy and not (args.check and f"create bucket {bucket}" in done):
                actions += converge_policy(s3, bucket, args.policy, args.check)
    except (ClientError, BotoCoreError) as exc:
        print(json.dumps({"failed": True, "msg": str(exc), "actions": actions}))
        return 1
    print(json.dumps({"changed": bool(actions), "actions": actions}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
