#!/usr/bin/python3
"""Converge S3 buckets to their desired state: exist, versioning, non-current version expiry, bucket policy.

Standard library only (the object-storage host needs no boto3). Requests are signed with AWS Signature
Version 4; the credentials come from stdin (access key, then secret key, one per line; an environment variable
would show in the run's verbose output). Prints one JSON line
{"changed": bool, "actions": [...]}; with --check it reports what it would change and changes nothing.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import ssl
import sys
import urllib.parse
import xml.etree.ElementTree as ET

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
RULE_ID = "eterna-noncurrent-expiry"


class S3Error(Exception):
    def __init__(self, status: int, body: bytes):
        super().__init__(f"HTTP {status}: {body[:300].decode(errors='replace')}")
        self.status = status
        self.body = body


class Client:
    def __init__(self, endpoint: str, region: str, cafile: str | None, access: str, secret: str):
        url = urllib.parse.urlsplit(endpoint)
        self.host, self.port = url.hostname or "localhost", url.port or 443
        self.netloc = url.netloc
        self.region, self.access, self.secret = region, access, secret
        self.ctx = ssl.create_default_context(cafile=cafile)

    def _sign(self, key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    def request(self, method: str, path: str, query: str = "", body: bytes = b"") -> tuple[int, bytes]:
        now = datetime.datetime.now(datetime.UTC)
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        payload_hash = hashlib.sha256(body).hexdigest()
        headers = {"host": self.netloc, "x-amz-date": amz_date, "x-amz-content-sha256": payload_hash}
        if body:
            headers["content-md5"] = base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 - S3 wants MD5
            headers["content-type"] = "application/json" if body.startswith(b"{") else "application/xml"
        # Query parameters without a value ("versioning") sign as "versioning=".
        canonical_query = "&".join(
            f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
            for k, v in sorted(urllib.parse.parse_qsl(query, keep_blank_values=True))
        )
        signed = sorted(headers)
        canonical = "\n".join(
            [
                method,
                urllib.parse.quote(path, safe="/-_.~"),
                canonical_query,
                "".join(f"{h}:{headers[h].strip()}\n" for h in signed),
                ";".join(signed),
                payload_hash,
            ]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = self._sign(("AWS4" + self.secret).encode(), day)
        for part in (self.region, "s3", "aws4_request"):
            key = self._sign(key, part)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access}/{scope}, "
            f"SignedHeaders={';'.join(signed)}, Signature={signature}"
        )
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30)
        try:
            conn.request(method, path + (f"?{query}" if query else ""), body=body or None, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def call(self, method: str, path: str, query: str = "", body: bytes = b"", ok=(200, 204)) -> tuple[int, bytes]:
        status, data = self.request(method, path, query, body)
        if status not in ok:
            raise S3Error(status, data)
        return status, data


def _text(root: ET.Element, path: str) -> str:
    node = root.find(path, {"s3": S3_NS})
    if node is None:  # servers may omit the namespace
        node = root.find(path.replace("s3:", ""))
    return (node.text or "").strip() if node is not None else ""


def current_expiry_days(client: Client, bucket: str) -> int:
    """Non-current days of our lifecycle rule, 0 when the bucket has no such rule."""
    status, data = client.call("GET", f"/{bucket}", "lifecycle", ok=(200, 404))
    if status == 404 or not data.strip():
        return 0
    root = ET.fromstring(data)  # noqa: S314 - our own server's answer over verified TLS
    for rule in list(root.iter(f"{{{S3_NS}}}Rule")) + list(root.iter("Rule")):
        if _text(rule, "s3:ID") == RULE_ID and _text(rule, "s3:Status") == "Enabled":
            days = _text(rule, "s3:NoncurrentVersionExpiration/s3:NoncurrentDays")
            return int(days) if days.isdigit() else 0
    return 0


def _as_list(value) -> list:
    return sorted(value) if isinstance(value, list) else [value]


def normalize_policy(doc: dict) -> list:
    """Statements in a comparable form: servers may turn one-element lists into strings and reorder keys."""
    out = []
    for st in doc.get("Statement", []):
        st = dict(st)
        for field in ("Action", "NotAction", "Resource", "NotResource"):
            if field in st:
                st[field] = _as_list(st[field])
        if isinstance(st.get("Principal"), dict):
            st["Principal"] = {k: _as_list(v) for k, v in st["Principal"].items()}
        out.append(json.dumps(st, sort_keys=True))
    return sorted(out)


def converge_policy(client: Client, bucket: str, policy: str, check: bool) -> list[str]:
    wanted = json.loads(policy.replace("{bucket}", bucket))
    status, data = client.call("GET", f"/{bucket}", "policy", ok=(200, 404))
    have = json.loads(data) if status == 200 and data.strip() else {}
    if normalize_policy(have) == normalize_policy(wanted):
        return []
    if not check:
        client.call("PUT", f"/{bucket}", "policy", json.dumps(wanted).encode())
    return [f"set the bucket policy of {bucket}"]


def converge(client: Client, bucket: str, versioning: str, days: int, check: bool) -> list[str]:
    actions: list[str] = []
    status, _ = client.request("HEAD", f"/{bucket}")
    if status == 404:
        actions.append(f"create bucket {bucket}")
        if check:
            return actions + [f"configure bucket {bucket}"]
        client.call("PUT", f"/{bucket}")
    elif status != 200:
        raise S3Error(status, b"HEAD bucket")

    _, data = client.call("GET", f"/{bucket}", "versioning")
    current = _text(ET.fromstring(data), "s3:Status") if data.strip() else ""  # noqa: S314
    if versioning and current != versioning:
        actions.append(f"set versioning of {bucket} to {versioning} (was {current or 'unset'})")
        if not check:
            xml = f'<VersioningConfiguration xmlns="{S3_NS}"><Status>{versioning}</Status></VersioningConfiguration>'
            client.call("PUT", f"/{bucket}", "versioning", xml.encode())

    have = current_expiry_days(client, bucket)
    if have != days:
        actions.append(f"set non-current version expiry of {bucket} to {days} days (was {have})")
        if not check and days > 0:
            xml = (
                f'<LifecycleConfiguration xmlns="{S3_NS}"><Rule><ID>{RULE_ID}</ID><Status>Enabled</Status>'
                "<Filter><Prefix></Prefix></Filter><NoncurrentVersionExpiration>"
                f"<NoncurrentDays>{days}</NoncurrentDays></NoncurrentVersionExpiration></Rule></LifecycleConfiguration>"
            )
            client.call("PUT", f"/{bucket}", "lifecycle", xml.encode())
        elif not check:
            client.call("DELETE", f"/{bucket}", "lifecycle")
    return actions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    client = Client(args.endpoint, args.region, args.cafile, access, secret)
    actions: list[str] = []
    try:
        for bucket in args.buckets:
            done = converge(client, bucket, args.versioning, args.noncurrent_days, args.check)
            actions += done
            if args.policy and not (args.check and f"create bucket {bucket}" in done):
                actions += converge_policy(client, bucket, args.policy, args.check)
    except (S3Error, OSError, ET.ParseError) as exc:
        print(json.dumps({"failed": True, "msg": str(exc), "actions": actions}))
        return 1
    print(json.dumps({"changed": bool(actions), "actions": actions}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
