"""Seed the bench tenants through the app's API, as their users would: each tenant's owner (created before by the
app's bootstrap command, see load_multitenant.sh) logs in, adds the tenant's other accounts through
/api/v1/members, then creates houses, uploads documents and BIM models until the tenant holds the sizes asked for.
Runs again without creating duplicates (it counts what the tenant already has). Writes the ids per tenant to the
file given as argument (JSON, no secret in it) for the load run's leak checker.

Environment: BENCH_BASE_URL (https://127.0.0.1), BENCH_HOST_HEADER (lab-edge), BENCH_TENANTS (4),
BENCH_ACCOUNTS_PER_TENANT (3), BENCH_HOUSES (20), BENCH_DOCUMENTS (10), BENCH_BIMS (2), BENCH_DOC_BYTES (2048).
The app has no API for rooms, bookings or maintenance records (their tables exist, no route): they are not seeded.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import labenv  # noqa: E402
import loadlib  # noqa: E402


class Api:
    """A small client of the app through the edge that waits out the edge's 429s (the login rate limit)."""

    def __init__(self, base: str, host: str) -> None:
        self.base = base.rstrip("/")
        self.http = labenv.http_session(host)
        self.token = ""

    def call(self, method: str, path: str, expect: tuple[int, ...] = (200, 201), **kwargs) -> requests.Response:
        """One request; a 429 (the edge's login rate) or 503 (a dependency of the app restarting) is retried after
        its Retry-After (2 s without one, 30 s at most) for up to 300 s. Raises SystemExit with the answer for any
        status outside ``expect``."""
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        deadline = time.monotonic() + 300
        while True:
            resp = self.http.request(method, self.base + path, headers=headers, timeout=120, **kwargs)
            if resp.status_code not in (429, 502, 503, 504) or time.monotonic() > deadline:
                break
            time.sleep(min(30.0, float(resp.headers.get("Retry-After", "2") or 2)))
        if resp.status_code not in expect:
            raise SystemExit(f"seed: {method} {path} answered {resp.status_code}: {resp.text[:300]}")
        return resp

    def login(self, account: labenv.Account, key: str) -> None:
        """Log in as ``account`` (OAuth2 password flow) and keep its access token."""
        self.token = ""
        form = {"username": account.email, "password": labenv.password(account, key), "tenant": account.tenant}
        self.token = self.call("POST", "/api/v1/auth/token", expect=(200,), data=form).json()["access_token"]


def document_body(tenant: str, n: int, size: int) -> bytes:
    """A small text document that names its tenant on its first line (the leak checker reads it back)."""
    head = f"tenant={tenant} document={n}\n".encode()
    return head + b"x" * max(0, size - len(head) - 1) + b"\n"


def seed_tenant(api: Api, tenant: str, key: str, sizes: dict[str, int]) -> dict[str, object]:
    """Accounts, houses, documents and BIM models of one tenant; returns their ids."""
    accounts = labenv.accounts(tenant, sizes["accounts"])
    api.login(accounts[0], key)
    for account in accounts[1:]:
        body = {
            "email": account.email,
            "role": account.role,
            "password": labenv.password(account, key),
            "full_name": f"{account.role} {account.index} of {tenant}",
        }
        api.call("POST", "/api/v1/members", expect=(201, 409), json=body)
    houses = [h["id"] for h in api.call("GET", "/api/v1/houses?limit=500").json()]
    for i in range(len(houses), sizes["houses"]):
        body = {"name": f"{tenant} house {i}", "address": f"{i} {tenant} street"}
        houses.append(api.call("POST", "/api/v1/houses", json=body).json()["id"])
    documents = [d["id"] for d in api.call("GET", "/api/v1/documents").json()]
    for i in range(len(documents), sizes["documents"]):
        files = {"file": (f"{tenant}-doc-{i}.txt", document_body(tenant, i, sizes["doc_bytes"]), "text/plain")}
        data = {"house_id": houses[i % len(houses)]} if houses else {}
        documents.append(api.call("POST", "/api/v1/documents", files=files, data=data).json()["id"])
    bims = [b["id"] for b in api.call("GET", "/api/v1/bim-models").json()]
    for i in range(len(bims), sizes["bims"]):
        files = {"file": (f"{tenant}-model-{i}.ifc", document_body(tenant, i, 512), "application/octet-stream")}
        bims.append(api.call("POST", "/api/v1/bim-models", files=files).json()["id"])
    members = api.call("GET", "/api/v1/members").json()
    return {
        "accounts": [{"email": a.email, "role": a.role, "index": a.index} for a in accounts],
        "members": len(members),
        "houses": houses,
        "documents": documents,
        "bims": bims,
    }


def main() -> int:
    out = Path(sys.argv[1])
    sizes = {
        "accounts": labenv.env_int("BENCH_ACCOUNTS_PER_TENANT", 3),
        "houses": labenv.env_int("BENCH_HOUSES", 20),
        "documents": labenv.env_int("BENCH_DOCUMENTS", 10),
        "bims": labenv.env_int("BENCH_BIMS", 2),
        "doc_bytes": labenv.env_int("BENCH_DOC_BYTES", 2048),
    }
    tenants = labenv.tenant_ids(labenv.env_int("BENCH_TENANTS", 4))
    api = Api(os.environ.get("BENCH_BASE_URL", "https://127.0.0.1"), os.environ.get("BENCH_HOST_HEADER", "lab-edge"))
    key = labenv.lab_master_key()
    start = time.monotonic()
    seeded = {t: seed_tenant(api, t, key, sizes) for t in tenants}
    # The seed itself must already be tenant-clean: every id belongs to exactly one tenant.
    registry = loadlib.TenantRegistry(frozenset(tenants))
    for tenant, data in seeded.items():
        for kind in ("houses", "documents", "bims"):
            for ident in data[kind]:
                registry.add(tenant, ident)
    out.write_text(
        json.dumps(
            {"sizes": sizes, "tenants": seeded, "not_in_api": ["rooms", "bookings", "maintenance_records"]}, indent=1
        )
    )
    total = {k: sum(len(d[k]) for d in seeded.values()) for k in ("houses", "documents", "bims")}
    print(
        f"seed: {len(tenants)} tenants, {sum(d['members'] for d in seeded.values())} accounts, "
        f"{total['houses']} houses, {total['documents']} documents, {total['bims']} BIM models "
        f"in {time.monotonic() - start:.0f} s (rooms, bookings, maintenance records: no API in the app)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
