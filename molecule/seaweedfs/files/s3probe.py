#!/usr/bin/python3
"""S3 probe run on the client container: one operation per call, JSON on stdout.

Endpoint and credentials come from S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY; without the keys the
request is sent unsigned (anonymous). TLS is verified against the system trust store. Exit 0 on success,
3 on an S3 error (its code is printed), 4 on a connection error.
"""

from __future__ import annotations

import json
import os
import sys

import boto3
import botocore
from botocore.config import Config


def client():
    cfg = {"s3": {"addressing_style": "path"}, "retries": {"max_attempts": 1}, "connect_timeout": 10}
    access, secret = os.environ.get("S3_ACCESS_KEY"), os.environ.get("S3_SECRET_KEY")
    if not access:
        cfg["signature_version"] = botocore.UNSIGNED
    return boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT"],
        region_name=os.environ.get("S3_REGION", "us-east-1"),
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=Config(**cfg),
    )


def run(op: str, args: list[str]) -> dict:
    s3 = client()
    if op == "buckets":
        return {"buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"])}
    if op == "create":
        s3.create_bucket(Bucket=args[0])
        return {}
    if op == "put":
        res = s3.put_object(Bucket=args[0], Key=args[1], Body=args[2].encode())
        return {"version": res.get("VersionId")}
    if op == "get":
        extra = {"VersionId": args[2]} if len(args) > 2 else {}
        return {"body": s3.get_object(Bucket=args[0], Key=args[1], **extra)["Body"].read().decode()}
    if op == "list":
        return {"keys": [o["Key"] for o in s3.list_objects_v2(Bucket=args[0]).get("Contents", [])]}
    if op == "delete":
        s3.delete_object(Bucket=args[0], Key=args[1])
        return {}
    if op == "versions":
        res = s3.list_object_versions(Bucket=args[0], Prefix=args[1])
        return {"versions": [{"id": v["VersionId"], "latest": v["IsLatest"]} for v in res.get("Versions", [])]}
    if op == "versioning":
        return {"status": s3.get_bucket_versioning(Bucket=args[0]).get("Status", "")}
    if op == "set-versioning":
        s3.put_bucket_versioning(Bucket=args[0], VersioningConfiguration={"Status": args[1]})
        return {}
    if op == "lifecycle":
        return {"rules": s3.get_bucket_lifecycle_configuration(Bucket=args[0])["Rules"]}
    if op == "delete-version":
        s3.delete_object(Bucket=args[0], Key=args[1], VersionId=args[2])
        return {}
    if op == "put-policy":
        s3.put_bucket_policy(Bucket=args[0], Policy=args[1])
        return {}
    if op == "delete-policy":
        s3.delete_bucket_policy(Bucket=args[0])
        return {}
    if op == "put-lifecycle":
        rule = {"ID": "probe", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": int(args[1])}}
        s3.put_bucket_lifecycle_configuration(Bucket=args[0], LifecycleConfiguration={"Rules": [rule]})
        return {}
    if op == "delete-lifecycle":
        s3.delete_bucket_lifecycle(Bucket=args[0])
        return {}
    if op == "delete-bucket":
        s3.delete_bucket(Bucket=args[0])
        return {}
    raise SystemExit(f"unknown operation {op}")


def main() -> int:
    try:
        out = run(sys.argv[1], sys.argv[2:])
    except botocore.exceptions.ClientError as exc:
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        print(json.dumps({"ok": False, "code": err.get("Code"), "status": status}))
        return 3
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.SSLError) as exc:
        print(json.dumps({"ok": False, "code": type(exc).__name__, "error": str(exc)}))
        return 4
    print(json.dumps({"ok": True, **out}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
