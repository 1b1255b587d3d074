#!/usr/bin/python3
"""S3 probe run on the client container: a batch of operations, one JSON result per operation.

Reads a JSON list of steps [identity, operation, *args] on stdin and prints a JSON list of results
({"ok": true, ...} or {"ok": false, "code": ...}). The endpoint is S3_ENDPOINT; identity NAME signs with
S3_<NAME>_ACCESS / S3_<NAME>_SECRET, and "anon" sends unsigned requests. An argument "$N.field" stands for
that field of the result of step N (e.g. a version id). TLS is verified against the system trust store.
Importing boto3 once per batch keeps the tests fast on a loaded machine.
"""

from __future__ import annotations

import json
import os
import sys

import boto3
import botocore
from botocore.config import Config


def client(identity: str):
    cfg = {"s3": {"addressing_style": "path"}, "retries": {"max_attempts": 1}, "connect_timeout": 10}
    access = os.environ.get(f"S3_{identity.upper()}_ACCESS")
    secret = os.environ.get(f"S3_{identity.upper()}_SECRET")
    if identity == "anon":
        cfg["signature_version"] = botocore.UNSIGNED
    return boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT"],
        region_name=os.environ.get("S3_REGION", "us-east-1"),
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=Config(**cfg),
    )


def run(s3, op: str, args: list[str]) -> dict:
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


def step(clients: dict, identity: str, op: str, args: list[str]) -> dict:
    if identity not in clients:
        clients[identity] = client(identity)
    try:
        return {"ok": True, **run(clients[identity], op, [str(a) for a in args])}
    except botocore.exceptions.ClientError as exc:
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return {"ok": False, "code": err.get("Code"), "status": status}
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.SSLError) as exc:
        return {"ok": False, "code": type(exc).__name__, "error": str(exc)}


def resolve(arg, results: list[dict]) -> str:
    text = str(arg)
    if text.startswith("$") and "." in text:
        index, field = text[1:].split(".", 1)
        return str(results[int(index)].get(field))
    return text


def main() -> int:
    clients: dict = {}
    results: list[dict] = []
    for identity, op, *args in json.load(sys.stdin):
        results.append(step(clients, identity, op, [resolve(a, results) for a in args]))
    print(json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
