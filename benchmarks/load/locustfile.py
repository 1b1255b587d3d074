"""Multi-tenant step load on the lab (Locust, headless; started by benchmarks/load_multitenant.sh in a container of
the lab's network). User classes (pick one on Locust's command line):

- ``DayUser``: a day of use across the bench tenants seeded by seed.py: log in, list, read, create, update, small
  document upload and download, BIM conversion requests, and a probe of another tenant's ids (must be 404).
- ``HouseListUser``: only a tenant's house list (50 rows), for the comparison with the ceiling.
- ``CeilingUser``: GET / of a bare uvicorn app returning a constant (ceiling_app.py).

The load rises in steps (loadlib.step_schedule) and stops after the first step whose p95 passes 2 s or whose error
ratio passes 1 %, after BENCH_MAX_REQUESTS requests, or at the end of the schedule. Every JSON answer of a tenant
request and every downloaded document is checked against the caller's tenant (loadlib.find_leaks): one leak fails
that request and makes the process exit with status 3. Writes <BENCH_RESULTS>/<BENCH_LABEL>.steps.csv and
.summary.json beside Locust's own CSV and HTML.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import gevent
import gevent.lock
import requests
from locust import FastHttpUser, LoadTestShape, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent))
import labenv  # noqa: E402
import loadlib  # noqa: E402

BASE = os.environ.get("BENCH_BASE_URL", "https://127.0.0.1")
HOST_HEADER = os.environ.get("BENCH_HOST_HEADER", "lab-edge")
# Choices of the load mix and arrival gaps: not security.
RNG = random.Random()  # noqa: S311
RESULTS = Path(os.environ.get("BENCH_RESULTS", "build/bench/load"))
LABEL = os.environ.get("BENCH_LABEL", "run")
SETTLE = labenv.env_float("BENCH_SETTLE_SECONDS", 5)
MAX_REQUESTS = labenv.env_int("BENCH_MAX_REQUESTS", 60000)
LOGIN_RATE = labenv.env_float("BENCH_LOGIN_RATE", 0.25)
P95_LIMIT = labenv.env_float("BENCH_P95_LIMIT_MS", loadlib.P95_LIMIT_MS)
ERROR_LIMIT = labenv.env_float("BENCH_ERROR_LIMIT", loadlib.ERROR_LIMIT)
# Self-test of the leak check's wiring: answers are checked against the wrong tenant, so the run must exit 3.
LEAK_SELFTEST = os.environ.get("BENCH_LEAK_SELFTEST", "") == "1"


def _rates() -> list[float]:
    explicit = os.environ.get("BENCH_RATES", "").split()
    if explicit:
        return [float(r) for r in explicit]
    return loadlib.step_rates(
        labenv.env_float("BENCH_START_RATE", 5),
        labenv.env_float("BENCH_RATE_FACTOR", 1.5),
        labenv.env_float("BENCH_RATE_MIN_INCREASE", 5),
        labenv.env_float("BENCH_MAX_RATE", 400),
    )


STEPS = loadlib.step_schedule(
    _rates(),
    labenv.env_float("BENCH_STEP_SECONDS", 20),
    labenv.env_int("BENCH_MAX_USERS", 150),
    labenv.env_float("BENCH_PER_USER_RATE", 1.0),
)


class Run:
    """The state of this run: the current step, the finished steps, the leaks found."""

    def __init__(self) -> None:
        self.step: loadlib.Step | None = None
        self.current: loadlib.StepResult | None = None
        self.window_start = 0.0
        self.opened_at = 0.0
        self.results: list[loadlib.StepResult] = []
        self.leaks: list[dict[str, object]] = []
        self.requests = 0
        self.stop_reason = "schedule done"
        self.started: float | None = None
        self.failed = ""

    def open(self, step: loadlib.Step) -> None:
        self.step = step
        self.opened_at = time.monotonic()
        self.window_start = self.opened_at + SETTLE
        self.current = loadlib.StepResult(rate=step.rate, users=step.users, seconds=0.0)

    def close(self) -> None:
        if self.current is not None:
            self.current.seconds = max(0.0, time.monotonic() - self.window_start)
            if self.current.seconds > 0:
                self.results.append(self.current)
                r = self.current
                print(
                    f"step {LABEL}: offered {r.rate:.0f}/s users {r.users} -> {r.throughput:.1f}/s, "
                    f"p50 {r.p(50):.0f} p95 {r.p(95):.0f} p99 {r.p(99):.0f} ms, errors {r.error_ratio:.2%}",
                    flush=True,
                )
        self.current = None


RUN = Run()


@events.request.add_listener
def _count(response_time: float, exception: BaseException | None = None, **_kwargs: object) -> None:
    RUN.requests += 1
    if RUN.current is not None and time.monotonic() >= RUN.window_start:
        RUN.current.add(response_time, exception is not None)


class StepShape(LoadTestShape):
    """Raises the offered rate step by step (STEPS); stops after the first step that misses a limit."""

    def tick(self):  # noqa: ANN201 - Locust's signature: (users, spawn rate) or None to stop
        if RUN.failed:
            RUN.stop_reason = RUN.failed
            return None
        if RUN.started is None:  # the accounts are still logging in (test_start): the clock has not started
            return 0, 1
        step = loadlib.step_at(STEPS, time.monotonic() - RUN.started)
        if step is not RUN.step:
            RUN.close()
            last = RUN.results[-1] if RUN.results else None
            if last is not None and not last.meets(P95_LIMIT, ERROR_LIMIT):
                RUN.stop_reason = f"step at {last.rate:.0f}/s missed a limit"
                return None
            if RUN.requests >= MAX_REQUESTS:
                RUN.stop_reason = f"BENCH_MAX_REQUESTS ({MAX_REQUESTS}) reached"
                return None
            if step is None:
                return None
            RUN.open(step)
        return step.users, step.users


# ---- Tenants, sessions, leak registry -------------------------------------------------------------------------


class Session:
    """One logged-in account: its tokens, refreshed (one at a time: a replayed refresh token revokes its family)
    shortly before the access token expires."""

    def __init__(self, account: labenv.Account, login: dict) -> None:
        self.account = account
        self.lock = gevent.lock.Semaphore()
        self._set(login)

    def _set(self, login: dict) -> None:
        self.access = login["access_token"]
        self.refresh = login["refresh_token"]
        self.expires = time.monotonic() + int(login["expires_in"])

    def header(self, http: requests.Session) -> str:
        """The Authorization header value, refreshing the token first when it expires within 60 s."""
        if self.expires - time.monotonic() < 60:
            with self.lock:
                if self.expires - time.monotonic() < 60:
                    resp = _post_retry(http, "/api/v1/auth/refresh", json={"refresh_token": self.refresh})
                    self._set(resp.json())
        return f"Bearer {self.access}"


def _post_retry(http: requests.Session, path: str, **kwargs) -> requests.Response:
    """POST through the edge, waiting out its 429s (the login rate limit) and 502-504s (an app worker or
    dependency restarting) for up to 300 s, as their Retry-After says (2 s without one)."""
    deadline = time.monotonic() + 300
    while True:
        resp = http.post(BASE + path, timeout=120, **kwargs)
        if resp.status_code not in (429, 502, 503, 504) or time.monotonic() > deadline:
            resp.raise_for_status()
            return resp
        time.sleep(min(30.0, float(resp.headers.get("Retry-After", "2") or 2)))


class Tenants:
    """The seeded tenants, their sessions and the ids each one owns (seed + created during the run)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.sessions: dict[str, list[Session]] = {}
        self.ids: dict[str, dict[str, list[str]]] = {}
        self.registry = loadlib.TenantRegistry(frozenset())
        self.http = labenv.http_session(HOST_HEADER)
        self.key = ""
        self._next = itertools.count()

    def load(self, seed_file: Path) -> None:
        seed = json.loads(seed_file.read_text())
        self.names = sorted(seed["tenants"])
        self.registry = loadlib.TenantRegistry(frozenset(self.names))
        self.key = labenv.lab_master_key()
        for tenant, data in seed["tenants"].items():
            self.ids[tenant] = {kind: list(data[kind]) for kind in ("houses", "documents", "bims")}
            for kind in ("houses", "documents", "bims"):
                for ident in data[kind]:
                    self.registry.add(tenant, ident)
        # Logins in parallel (argon2 takes seconds on a loaded host); the edge's 429s are waited out.
        accounts = [labenv.Account(t, a["role"], a["index"]) for t, d in seed["tenants"].items() for a in d["accounts"]]
        jobs = [gevent.spawn(self.login, account) for account in accounts]
        gevent.joinall(jobs, raise_error=True)
        for account, job in zip(accounts, jobs, strict=True):
            self.sessions.setdefault(account.tenant, []).append(Session(account, job.value))

    def login(self, account: labenv.Account) -> dict:
        form = {"username": account.email, "password": labenv.password(account, self.key), "tenant": account.tenant}
        return _post_retry(self.http, "/api/v1/auth/token", data=form).json()

    def next_tenant(self) -> str:
        return self.names[next(self._next) % len(self.names)]

    def add(self, tenant: str, kind: str, ident: str) -> None:
        self.registry.add(tenant, ident)
        self.ids[tenant][kind].append(ident)


TENANTS = Tenants()


@events.test_start.add_listener
def _login(environment, **_kwargs: object) -> None:  # noqa: ANN001 - Locust's signature
    seed = os.environ.get("BENCH_SEED", "")
    if seed and any(c.__name__ in ("DayUser", "HouseListUser") for c in environment.user_classes):
        start = time.monotonic()
        try:
            TENANTS.load(Path(seed))
        except Exception as exc:  # noqa: BLE001 - any failure to log in ends the run, with its reason
            RUN.failed = f"the accounts could not log in: {exc}"
            print(RUN.failed, flush=True)
            return
        count = sum(len(s) for s in TENANTS.sessions.values())
        print(f"logged in {count} accounts of {len(TENANTS.names)} tenants in {time.monotonic() - start:.0f} s")
    RUN.started = time.monotonic()


@events.quitting.add_listener
def _write(environment, **_kwargs: object) -> None:  # noqa: ANN001 - Locust's signature
    RUN.close()
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = [r.row() for r in RUN.results]
    with open(RESULTS / f"{LABEL}.steps.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(loadlib.StepResult(0, 0, 0).row()))
        writer.writeheader()
        writer.writerows(rows)
    k = loadlib.knee(RUN.results, P95_LIMIT, ERROR_LIMIT)
    summary = {
        "label": LABEL,
        "base_url": BASE,
        "stop_reason": RUN.stop_reason,
        "requests": RUN.requests,
        "knee": k.row() if k else None,
        "max_throughput_rps": max((r.throughput for r in RUN.results), default=0.0),
        "leaks": RUN.leaks[:50],
        "leak_count": len(RUN.leaks),
        "limits": {"p95_ms": P95_LIMIT, "error_ratio": ERROR_LIMIT},
    }
    (RESULTS / f"{LABEL}.summary.json").write_text(json.dumps(summary, indent=1))
    knee_text = "below the first step"
    if k:
        knee_text = f"{k.rate:.0f}/s offered, {k.throughput:.1f}/s answered, p95 {k.p(95):.0f} ms"
    print(f"{LABEL}: knee {knee_text}; stopped: {RUN.stop_reason}; {RUN.requests} requests; leaks {len(RUN.leaks)}")
    # The knee is a figure, not a verdict: errors past it are expected. A leak fails the run (3), so does a run
    # that could not start (1).
    environment.process_exit_code = 3 if RUN.leaks else (1 if RUN.failed else 0)


# ---- Users ------------------------------------------------------------------------------------------------------


class PacedUser(FastHttpUser):
    """Requests at the current step's per-user rate with exponential gaps (a Poisson arrival per user), catching up
    at most one gap when an answer came late, so the offered rate holds while latency grows."""

    abstract = True
    host = BASE
    insecure = True  # hostname check off (we dial 127.0.0.1); the chain is verified by labenv.ssl_context
    ssl_context_factory = staticmethod(labenv.ssl_context)
    network_timeout = 30.0
    connection_timeout = 10.0

    def wait_time(self) -> float:
        rate = RUN.step.per_user_rate if RUN.step else 1.0
        now = time.monotonic()
        due = getattr(self, "_due", now)
        self._due = max(due + RNG.expovariate(rate), now - 1.0 / rate)
        return max(0.0, self._due - now)


class CeilingUser(PacedUser):
    """The bare uvicorn endpoint returning a constant."""

    @task
    def constant(self) -> None:
        self.client.get("/", name="GET / (constant)")


class TenantUser(PacedUser):
    abstract = True

    def on_start(self) -> None:
        self.tenant = TENANTS.next_tenant()

    def session(self, write: bool = False) -> Session:
        sessions = TENANTS.sessions[self.tenant]
        if write:
            sessions = [s for s in sessions if s.account.role in ("owner", "admin", "member")] or sessions
        return RNG.choice(sessions)

    def call(
        self,
        method: str,
        path: str,
        name: str,
        expect: tuple[int, ...] = (200,),
        write: bool = False,
        check: str = "json",
        **kwargs,
    ) -> object:
        """One request as a session of this user's tenant; a status outside ``expect`` or any leak fails it.
        Returns the decoded JSON (None for other answers)."""
        session = self.session(write)
        headers = {"Host": HOST_HEADER, "Authorization": session.header(TENANTS.http)} | kwargs.pop("headers", {})
        with self.client.request(method, path, name=name, headers=headers, catch_response=True, **kwargs) as resp:
            if resp.status_code not in expect:
                resp.failure(f"status {resp.status_code}: {(resp.text or '')[:120]}")
                return None
            owner = self.tenant
            if LEAK_SELFTEST:
                owner = TENANTS.names[(TENANTS.names.index(self.tenant) + 1) % len(TENANTS.names)]
            if check == "json" and resp.text:
                data = resp.json()
                reasons = loadlib.find_leaks(owner, data, TENANTS.registry)
            elif check == "text":
                data = None
                reasons = loadlib.find_leaks_in_text(owner, resp.text or "", TENANTS.registry)
            else:
                data, reasons = None, []
            if reasons:
                RUN.leaks.append({"tenant": self.tenant, "request": f"{method} {path}", "reasons": reasons[:5]})
                resp.failure(f"tenant leak: {reasons[0]}")
                return None
            resp.success()
            return data

    def pick(self, kind: str) -> str | None:
        ids = TENANTS.ids[self.tenant][kind]
        return RNG.choice(ids) if ids else None


class HouseListUser(TenantUser):
    """A tenant's house list only (50 rows)."""

    @task
    def list_houses(self) -> None:
        self.call("GET", "/api/v1/houses?limit=50", "GET /api/v1/houses?limit=50")


class DayUser(TenantUser):
    """A day of use, weighted: reads dominate, writes and uploads are a few percent, logins rare (the edge limits
    logins per client address, and this whole load comes from one address: BENCH_LOGIN_RATE caps them)."""

    _login_bucket = [0.0, time.monotonic()]  # tokens, last refill (shared by all users of the process)

    @task(22)
    def list_houses(self) -> None:
        self.call("GET", "/api/v1/houses?limit=50", "GET /api/v1/houses?limit=50")

    @task(18)
    def read_house(self) -> None:
        if (house := self.pick("houses")) is not None:
            self.call("GET", f"/api/v1/houses/{house}", "GET /api/v1/houses/{id}")

    @task(8)
    def list_documents(self) -> None:
        self.call("GET", "/api/v1/documents", "GET /api/v1/documents")

    @task(6)
    def read_document(self) -> None:
        if (doc := self.pick("documents")) is not None:
            self.call("GET", f"/api/v1/documents/{doc}", "GET /api/v1/documents/{id}")

    @task(8)
    def download_document(self) -> None:
        if (doc := self.pick("documents")) is not None:
            self.call("GET", f"/api/v1/documents/{doc}/download", "GET /api/v1/documents/{id}/download", check="text")

    @task(5)
    def create_house(self) -> None:
        n = uuid.uuid4().hex[:8]
        body = {"name": f"{self.tenant} house {n}", "address": f"{n} {self.tenant} street"}
        data = self.call("POST", "/api/v1/houses", "POST /api/v1/houses", expect=(201,), write=True, json=body)
        if isinstance(data, dict):
            TENANTS.add(self.tenant, "houses", data["id"])

    @task(6)
    def update_house(self) -> None:
        if (house := self.pick("houses")) is not None:
            body = {"address": f"{uuid.uuid4().hex[:6]} {self.tenant} avenue"}
            self.call("PATCH", f"/api/v1/houses/{house}", "PATCH /api/v1/houses/{id}", write=True, json=body)

    def _upload(self, path: str, name: str, filename: str, content: bytes, ctype: str) -> dict | None:
        boundary = uuid.uuid4().hex
        body = loadlib.multipart({}, {"file": (filename, content, ctype)}, boundary)
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        data = self.call("POST", path, name, expect=(201,), write=True, data=body, headers=headers)
        return data if isinstance(data, dict) else None

    @task(4)
    def upload_document(self) -> None:
        n = uuid.uuid4().hex[:8]
        content = f"tenant={self.tenant} document={n}\n".encode() + b"y" * 2000 + b"\n"
        if data := self._upload(
            "/api/v1/documents", "POST /api/v1/documents", f"{self.tenant}-{n}.txt", content, "text/plain"
        ):
            TENANTS.add(self.tenant, "documents", data["id"])

    @task(2)
    def bim_conversion(self) -> None:
        n = uuid.uuid4().hex[:8]
        content = f"ISO-10303-21; tenant={self.tenant} model={n}\n".encode() + b"#1=IFCWALL();\n" * 20
        data = self._upload(
            "/api/v1/bim-models",
            "POST /api/v1/bim-models",
            f"{self.tenant}-{n}.ifc",
            content,
            "application/octet-stream",
        )
        if data:
            TENANTS.add(self.tenant, "bims", data["id"])
            self.call(
                "POST",
                f"/api/v1/bim-models/{data['id']}/convert",
                "POST /api/v1/bim-models/{id}/convert",
                expect=(202,),
                write=True,
            )

    @task(3)
    def list_bims(self) -> None:
        self.call("GET", "/api/v1/bim-models", "GET /api/v1/bim-models")

    @task(6)
    def me(self) -> None:
        self.call("GET", "/api/v1/auth/me", "GET /api/v1/auth/me")

    @task(3)
    def list_members(self) -> None:
        self.call("GET", "/api/v1/members", "GET /api/v1/members", write=True)

    @task(3)
    def probe_other_tenant(self) -> None:
        """Another tenant's house by id: 404 is the right answer; a 200 is a leak (find_leaks names it)."""
        others = [t for t in TENANTS.names if t != self.tenant]
        if others and (ids := TENANTS.ids[RNG.choice(others)]["houses"]):
            self.call(
                "GET",
                f"/api/v1/houses/{RNG.choice(ids)}",
                "GET /api/v1/houses/{other tenant's id}",
                expect=(404,),
                check="none",
            )

    @task(1)
    def login(self) -> None:
        bucket = DayUser._login_bucket
        now = time.monotonic()
        bucket[0] = min(2.0, bucket[0] + (now - bucket[1]) * LOGIN_RATE)
        bucket[1] = now
        if bucket[0] < 1:
            self.list_houses()
            return
        bucket[0] -= 1
        account = RNG.choice(TENANTS.sessions[self.tenant]).account
        form = {"username": account.email, "password": labenv.password(account, TENANTS.key), "tenant": self.tenant}
        headers = {"Host": HOST_HEADER, "Content-Type": "application/x-www-form-urlencoded"}
        with self.client.post(
            "/api/v1/auth/token",
            name="POST /api/v1/auth/token",
            data=urlencode(form),
            headers=headers,
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}")
            elif resp.json().get("tenant") != self.tenant:
                RUN.leaks.append(
                    {
                        "tenant": self.tenant,
                        "request": "POST /api/v1/auth/token",
                        "reasons": [f"token for tenant {resp.json().get('tenant')}"],
                    }
                )
                resp.failure("tenant leak: token of another tenant")
