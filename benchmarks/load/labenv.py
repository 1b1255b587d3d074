"""What the load test knows about the lab: its bench tenants and their accounts, their passwords (derived from the
lab's public master key, never written anywhere), the TLS trust of the lab's CA and the environment variables that
size the run. Shared by seed.py and locustfile.py; run inside the bench container with the repository mounted.
"""

from __future__ import annotations

import importlib.util
import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

ROOT = Path(__file__).resolve().parents[2]
INVENTORY_MAIN = ROOT / "inventories" / "lab" / "group_vars" / "all" / "main.yml"
CA_FILE = ROOT / ".pki" / "lab" / "ca.crt"
# Roles of each tenant's accounts: the owner comes from the app's bootstrap (app.manage create-owner, as
# app_bootstrap_owners does), the others are added by that owner through POST /api/v1/members.
MEMBER_ROLES = ("member", "viewer")


def env_int(name: str, default: int) -> int:
    """Integer environment variable ``name`` (``default`` when unset). Raises ValueError naming it when set to
    something else than a whole number."""
    raw = os.environ.get(name, "")
    if not raw:
        return default
    if not re.fullmatch(r"-?\d+", raw.strip()):
        raise ValueError(f"{name} must be a whole number, got {raw!r}")
    return int(raw)


def env_float(name: str, default: float) -> float:
    """Float environment variable ``name`` (``default`` when unset). Raises ValueError naming it otherwise."""
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def tenant_ids(count: int) -> list[str]:
    """The bench tenants: ``bench-t01`` ... (ids the app accepts, two digits at least so that one never prefixes
    another). Raises ValueError outside 1-99."""
    if not 1 <= count <= 99:
        raise ValueError(f"BENCH_TENANTS must be 1-99, got {count}")
    return [f"bench-t{i:02d}" for i in range(1, count + 1)]


@dataclass(frozen=True)
class Account:
    """A bench account: its tenant, role and e-mail; the password is derived on demand."""

    tenant: str
    role: str
    index: int = 0

    @property
    def email(self) -> str:
        """The account's e-mail (names its tenant, which the leak checker reads)."""
        name = "owner" if self.role == "owner" else f"{self.role}{self.index}"
        return f"{name}@{self.tenant}.bench.eterna.test"

    @property
    def purpose(self) -> str:
        """The derivation purpose of its password."""
        return f"lab/bench/{self.tenant}/{self.role}{self.index}"


def accounts(tenant: str, per_tenant: int) -> list[Account]:
    """The ``per_tenant`` accounts of ``tenant`` (at least 1): the owner, then members and viewers in turn."""
    result = [Account(tenant, "owner")]
    for i in range(1, max(1, per_tenant)):
        result.append(Account(tenant, MEMBER_ROLES[(i - 1) % len(MEMBER_ROLES)], i))
    return result


def _secrets_module():
    spec = importlib.util.spec_from_file_location("eterna_secrets", ROOT / "filter_plugins" / "secrets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lab_master_key() -> str:
    """The lab's public master key (refuses any inventory whose eterna_env is not ``lab``)."""
    text = INVENTORY_MAIN.read_text()
    env = re.search(r"^eterna_env: *(\S+)", text, re.M)
    key = re.search(r"^eterna_master_key: *([0-9a-f]{64})", text, re.M)
    if not env or env.group(1) != "lab" or not key:
        raise SystemExit("the load test derives passwords from the lab inventory only")
    return key.group(1)


def password(account: Account, key: str | None = None) -> str:
    """The account's password, derived from the lab key and its purpose (never stored)."""
    return _secrets_module().derive_secret(key or lab_master_key(), account.purpose)


def http_session(host: str) -> requests.Session:
    """A requests session for the edge dialled at 127.0.0.1: TLS verified against the lab's CA and for the name
    ``host`` (sent as SNI and checked against the certificate), ``host`` also as the Host header."""
    session = requests.Session()
    session.verify = str(CA_FILE)
    session.headers["Host"] = host
    session.mount("https://", _NamedHostAdapter(host))
    return session


class _NamedHostAdapter(HTTPAdapter):
    def __init__(self, host: str) -> None:
        self._server_hostname = host
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - requests' signature
        kwargs["server_hostname"] = self._server_hostname
        super().init_poolmanager(*args, **kwargs)


def ssl_context(cafile: str | os.PathLike[str] | None = None, **_ignored: object) -> ssl.SSLContext:
    """A client TLS context that verifies the server's chain against the lab's CA. The load generator dials
    127.0.0.1 (to stay inside nginx_limit_exempt_networks) with Host lab-edge, so the name check is done by
    the Host header's virtual host, not by the certificate's name."""
    ctx = ssl.create_default_context(cafile=str(CA_FILE))
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
