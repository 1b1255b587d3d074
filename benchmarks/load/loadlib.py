"""Pure parts of the multi-tenant load test (benchmarks/load/): the step schedule, per-step statistics, the knee and
the tenant leak checker. No Locust and no network here, so tests/unit/test_bench_load.py covers all of it.

Vocabulary: the *offered* rate of a step is the request rate the load generator aims at (requests/s); the
*throughput* is what was answered during the step's measured window; the *knee* is the highest offered rate whose
step met both limits (p95 latency and error ratio) and kept up with the offered rate, before the first step that
did not. Keeping up matters because percentiles see only answered requests: a saturated system that holds most
requests past the window (they time out later) can show a low p95 over the few it answered.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# Limits of issue 25: a step is good while p95 <= 2 s and errors <= 1 %.
P95_LIMIT_MS = 2000.0
ERROR_LIMIT = 0.01
# Standard deviations of a Poisson count below the offered count that a step may fall short and still keep up.
KEEP_UP_SIGMAS = 3.0


def keeps_up(rate: float, seconds: float, requests: int, sigmas: float = KEEP_UP_SIGMAS) -> bool:
    """True when a step answered about what was offered: ``requests`` (answered in the window) is at least the
    offered count ``rate * seconds`` (requests/s times seconds) minus ``sigmas`` standard deviations of a Poisson
    count of that mean (the users' exponential gaps make arrivals roughly Poisson), so sampling noise at low rates
    is not read as saturation. Example: 15 s at 112/s offers 1680; 1558 answered keep up, 478 do not."""
    expected = rate * seconds
    return requests >= expected - sigmas * math.sqrt(expected)


@dataclass(frozen=True)
class Step:
    """One step of the load: ``rate`` offered requests/s by ``users`` simulated users from ``start`` (seconds
    since the run began) for ``duration`` seconds."""

    index: int
    rate: float
    users: int
    start: float
    duration: float

    @property
    def end(self) -> float:
        """Second (since the run began) at which the step ends."""
        return self.start + self.duration

    @property
    def per_user_rate(self) -> float:
        """Requests/s each user aims at so that ``users`` of them offer ``rate``."""
        return self.rate / self.users


def step_rates(start: float, factor: float, minimum_increase: float, maximum: float) -> list[float]:
    """Offered rates (requests/s) from ``start`` up to ``maximum`` included: each rate is the larger of
    ``previous * factor`` and ``previous + minimum_increase``, rounded to a whole request/s.

    Raises ValueError when ``start`` or ``maximum`` is not positive, ``start > maximum``, ``factor < 1`` or
    ``minimum_increase < 1`` (the schedule would not rise)."""
    if start <= 0 or maximum <= 0 or start > maximum:
        raise ValueError(f"need 0 < start <= maximum (start={start}, maximum={maximum})")
    if factor < 1 or minimum_increase < 1:
        raise ValueError(
            f"the rate must rise: factor >= 1 and minimum_increase >= 1 (got {factor}, {minimum_increase})"
        )
    rates = [float(round(start))]
    while True:
        nxt = float(round(max(rates[-1] * factor, rates[-1] + minimum_increase)))
        if nxt > maximum:
            return rates
        rates.append(nxt)


def step_schedule(
    rates: Iterable[float], step_seconds: float, max_users: int, per_user_rate: float = 1.0
) -> list[Step]:
    """Steps of ``step_seconds`` each, one per offered rate, back to back from second 0. A step uses
    ``ceil(rate / per_user_rate)`` users, at most ``max_users`` (then each user offers more than
    ``per_user_rate``): each simulated user holds one connection, and the edge limits connections per client
    address (nginx_limit_conn_per_ip).

    Raises ValueError for a non-positive duration, user cap or per-user rate, an empty or non-increasing list of
    rates."""
    rates = list(rates)
    if step_seconds <= 0 or max_users < 1 or per_user_rate <= 0:
        raise ValueError("step_seconds, max_users and per_user_rate must be positive")
    if not rates or any(r <= 0 for r in rates) or any(b <= a for a, b in zip(rates, rates[1:], strict=False)):
        raise ValueError(f"rates must be positive and increasing: {rates}")
    steps = []
    for i, rate in enumerate(rates):
        users = min(max_users, max(1, math.ceil(rate / per_user_rate)))
        steps.append(Step(index=i, rate=rate, users=users, start=i * step_seconds, duration=step_seconds))
    return steps


def step_at(steps: list[Step], elapsed: float) -> Step | None:
    """The step running ``elapsed`` seconds after the start, or None once the schedule is over."""
    for step in steps:
        if step.start <= elapsed < step.end:
            return step
    return None


def percentile(histogram: Mapping[float, int], q: float) -> float:
    """The ``q``-th percentile (0 < q <= 100) of a histogram {response time in ms: count}, nearest-rank
    method (the smallest value with at least q % of the samples at or below it). 0.0 for an empty histogram.

    Raises ValueError for q outside (0, 100] or a negative count."""
    if not 0 < q <= 100:
        raise ValueError(f"percentile q must be in (0, 100], got {q}")
    if any(c < 0 for c in histogram.values()):
        raise ValueError("histogram counts must not be negative")
    total = sum(histogram.values())
    if total == 0:
        return 0.0
    rank = math.ceil(q / 100 * total)
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return float(value)
    return float(max(histogram))  # not reached: seen == total >= rank


def bucket(ms: float) -> int:
    """Response time (ms) rounded like Locust's own histogram: exact below 100 ms, to 10 ms below 1 s, to 100 ms
    above, so per-step percentiles match the precision of its CSV."""
    if ms < 100:
        return round(ms)
    if ms < 1000:
        return round(ms, -1)
    return round(ms, -2)


@dataclass
class StepResult:
    """What one step measured over its window (``seconds``, after the settling time)."""

    rate: float
    users: int
    seconds: float
    requests: int = 0
    failures: int = 0
    histogram: dict[int, int] = field(default_factory=dict)

    def add(self, response_time_ms: float, failed: bool) -> None:
        """Count one request: its response time (ms) and whether it failed."""
        self.requests += 1
        self.failures += int(failed)
        b = bucket(response_time_ms)
        self.histogram[b] = self.histogram.get(b, 0) + 1

    @property
    def throughput(self) -> float:
        """Requests answered per second of the window."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_ratio(self) -> float:
        """Failed requests / requests (0.0 without requests)."""
        return self.failures / self.requests if self.requests else 0.0

    def p(self, q: float) -> float:
        """The q-th percentile of the window's response times (ms)."""
        return percentile(self.histogram, q)

    def meets(
        self, p95_limit_ms: float = P95_LIMIT_MS, error_limit: float = ERROR_LIMIT, min_requests: int = 20
    ) -> bool:
        """True when the step had at least ``min_requests`` requests, p95 <= ``p95_limit_ms``, error ratio <=
        ``error_limit`` and it kept up with its offered rate (``keeps_up``); a step with too few requests proves
        nothing, so it does not meet the limits."""
        return row_meets(self.row(), p95_limit_ms, error_limit, min_requests)

    def row(self) -> dict[str, Any]:
        """The step as a flat CSV row (times in ms, rates in requests/s)."""
        return {
            "offered_rps": self.rate,
            "users": self.users,
            "seconds": round(self.seconds, 1),
            "requests": self.requests,
            "failures": self.failures,
            "throughput_rps": round(self.throughput, 2),
            "error_ratio": round(self.error_ratio, 5),
            "p50_ms": self.p(50),
            "p95_ms": self.p(95),
            "p99_ms": self.p(99),
        }


def row_meets(
    row: Mapping[str, Any], p95_limit_ms: float = P95_LIMIT_MS, error_limit: float = ERROR_LIMIT, min_requests: int = 20
) -> bool:
    """``StepResult.meets`` for a step as written to ``<label>.steps.csv`` (``StepResult.row``; values may be the
    CSV's strings), so that a report can judge a run again with the current rules."""
    requests = int(float(row["requests"]))
    return (
        requests >= min_requests
        and float(row["p95_ms"]) <= p95_limit_ms
        and float(row["error_ratio"]) <= error_limit
        and keeps_up(float(row["offered_rps"]), float(row["seconds"]), requests)
    )


def knee_row(
    rows: Iterable[Mapping[str, Any]], p95_limit_ms: float = P95_LIMIT_MS, error_limit: float = ERROR_LIMIT
) -> Mapping[str, Any] | None:
    """The step at the knee: among the steps before the first one that misses a limit (``row_meets``), the one
    with the highest offered rate. None when the first step already misses (the knee is below the schedule's
    start). A later step that meets the limits again after a miss does not count: the system broke at the first
    miss."""
    best = None
    for row in sorted(rows, key=lambda r: float(r["offered_rps"])):
        if not row_meets(row, p95_limit_ms, error_limit):
            break
        best = row
    return best


def knee(
    results: list[StepResult], p95_limit_ms: float = P95_LIMIT_MS, error_limit: float = ERROR_LIMIT
) -> StepResult | None:
    """``knee_row`` over a run's StepResults: the StepResult at the knee, or None."""
    rows = [(r.row(), r) for r in results]
    best = knee_row([row for row, _ in rows], p95_limit_ms, error_limit)
    return next((r for row, r in rows if row is best), None)


# ---- Leak check -----------------------------------------------------------------------------------------------

OBJECT_ID_KEYS = ("id", "user_id")


@dataclass
class TenantRegistry:
    """Which tenant owns each object the bench created or seeded (ids as strings), and how to recognise a bench
    tenant's name inside any string: every string the bench writes carries its tenant's id, and bench tenant ids
    match ``marker`` (a regular expression), e.g. ``bench-t07``."""

    tenants: frozenset[str]
    marker: str = r"bench-t\d{2,}"
    owners: dict[str, str] = field(default_factory=dict)

    def add(self, tenant: str, object_id: Any) -> None:
        """Record that ``tenant`` owns ``object_id``. Raises ValueError for an unknown tenant or an id already
        recorded for another tenant (the bench itself would be confused)."""
        if tenant not in self.tenants:
            raise ValueError(f"unknown bench tenant {tenant!r}")
        key = str(object_id)
        if self.owners.setdefault(key, tenant) != tenant:
            raise ValueError(f"object {key} recorded for {self.owners[key]} and {tenant}")

    def owner(self, object_id: Any) -> str | None:
        """The tenant that owns ``object_id``, or None when the bench does not know it."""
        return self.owners.get(str(object_id))

    def markers_in(self, text: str) -> set[str]:
        """Bench tenant ids named in ``text``."""
        return set(re.findall(rf"(?<![a-z0-9-])({self.marker})(?![0-9])", text))


def _objects(payload: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object (dict) in ``payload``, the payload itself included, depth first."""
    if isinstance(payload, dict):
        yield payload
        for value in payload.values():
            yield from _objects(value)
    elif isinstance(payload, list):
        for item in payload:
            yield from _objects(item)


def _strings(obj: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, value) of the string fields of one object (not of nested objects)."""
    for key, value in obj.items():
        if isinstance(value, str):
            yield key, value


def find_leaks(tenant: str, payload: Any, registry: TenantRegistry, require_own_marker: bool = True) -> list[str]:
    """Reasons why ``payload`` (a decoded JSON answer given to a caller of ``tenant``) carries data of another
    tenant; an empty list when it does not. An object (a dict with ``id`` or ``user_id``) leaks when:

    - its id is recorded for another tenant in ``registry``;
    - any of its string fields names another bench tenant (every string the bench writes names its tenant);
    - its ``tenant`` or ``tenant_id`` field is set and is not ``tenant``;
    - with ``require_own_marker``: the bench does not know its id and none of its strings names ``tenant``
      (an object of a tenant the bench did not create, such as the lab's demo tenants, is foreign too).

    Raises ValueError when ``tenant`` is not a bench tenant of ``registry``."""
    if tenant not in registry.tenants:
        raise ValueError(f"unknown bench tenant {tenant!r}")
    reasons = []
    for obj in _objects(payload):
        declared = obj.get("tenant", obj.get("tenant_id"))
        if declared is not None and declared != tenant:
            reasons.append(f"object {obj.get('id', obj.get('user_id'))} declares tenant {declared!r}")
        ident = next((obj[k] for k in OBJECT_ID_KEYS if k in obj), None)
        named = set()
        for key, value in _strings(obj):
            for other in registry.markers_in(value) - {tenant}:
                reasons.append(f"object {ident} field {key!r} names tenant {other}")
            named |= registry.markers_in(value)
        if ident is None:
            continue
        owner = registry.owner(ident)
        if owner is not None and owner != tenant:
            reasons.append(f"object {ident} belongs to tenant {owner}")
        elif owner is None and require_own_marker and tenant not in named and declared != tenant:
            reasons.append(f"object {ident} is not known to belong to {tenant} and does not name it")
    return reasons


def find_leaks_in_text(tenant: str, text: str, registry: TenantRegistry) -> list[str]:
    """Reasons why a text body (a downloaded document) given to a caller of ``tenant`` carries another tenant's
    data: it names another bench tenant, or it names none at all (every document the bench uploads names its
    tenant). Raises ValueError for a tenant that is not a bench tenant."""
    if tenant not in registry.tenants:
        raise ValueError(f"unknown bench tenant {tenant!r}")
    named = registry.markers_in(text)
    reasons = [f"body names tenant {other}" for other in sorted(named - {tenant})]
    if tenant not in named:
        reasons.append(f"body does not name {tenant}")
    return reasons


def scaling_ratio(throughputs: Mapping[int, float]) -> dict[int, float]:
    """Throughput with n app hosts divided by the throughput with the fewest hosts measured, per n.

    Raises ValueError when the baseline is missing or not positive."""
    if not throughputs:
        raise ValueError("no throughput measured")
    base_n = min(throughputs)
    base = throughputs[base_n]
    if base <= 0:
        raise ValueError(f"baseline throughput with {base_n} host(s) is {base}")
    return {n: throughputs[n] / base for n in sorted(throughputs)}


def multipart(fields: Mapping[str, str], files: Mapping[str, tuple[str, bytes, str]], boundary: str) -> bytes:
    """A multipart/form-data body (RFC 7578): ``fields`` {name: value} and ``files`` {name: (filename, content,
    content type)}, separated by ``boundary``. Raises ValueError when the boundary occurs in a value or a name or
    filename holds a quote or a line break (they would end the part early)."""
    sep = f"--{boundary}".encode()
    parts = []
    for name, value in fields.items():
        _check_part(boundary, name, value.encode())
        parts.append(sep + f'\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode())
    for name, (filename, content, ctype) in files.items():
        _check_part(boundary, name, content, filename)
        disposition = f'form-data; name="{name}"; filename="{filename}"'
        head = f"\r\nContent-Disposition: {disposition}\r\nContent-Type: {ctype}\r\n\r\n"
        parts.append(sep + head.encode() + content)
    return b"\r\n".join(parts) + b"\r\n" + sep + b"--\r\n"


def _check_part(boundary: str, name: str, content: bytes, filename: str = "") -> None:
    if boundary.encode() in content:
        raise ValueError("the multipart boundary occurs in a part")
    if any(c in name + filename for c in '"\r\n'):
        raise ValueError(f"a quote or line break in the part name or filename {name!r} {filename!r}")
