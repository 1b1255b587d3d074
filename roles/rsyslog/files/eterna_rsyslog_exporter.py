#!/usr/bin/python3
"""rsyslog's own counters (``impstats``) for Prometheus, through the node exporter's textfile collector.

rsyslog runs this program with ``omprog`` and writes every ``impstats`` record to its standard input, one JSON
object a line (``{"name": "fwd-lab-ops", "origin": "core.action", "processed": 12, "failed": 0, ...}``). After
each burst of records (no new line for ``--settle`` seconds) the program rewrites ``--output`` atomically:

    rsyslog_stat{origin="core.action",name="fwd-lab-ops",counter="processed"} 12
    rsyslog_stats_last_update_timestamp_seconds 1.7e9

One gauge per numeric counter (impstats counters are cumulative unless rsyslog resets them, which the role
does not configure). Names follow rsyslog's own: origin (``core.queue``, ``core.action``, ``omelasticsearch``,
``imjournal``...), the object's name, the counter's name.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import sys
import time
from pathlib import Path
from typing import Any


def label(value: str) -> str:
    """Escape a Prometheus label value (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def samples(record: dict[str, Any]) -> dict[tuple[str, str, str], float]:
    """(origin, name, counter) -> value for every numeric counter of one impstats record (others ignored)."""
    origin, name = str(record.get("origin", "")), str(record.get("name", ""))
    found = {}
    for counter, value in record.items():
        if counter in ("origin", "name") or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            found[(origin, name, counter)] = float(value)
    return found


def render(values: dict[tuple[str, str, str], float], now: float) -> str:
    """The textfile collector's content for ``values`` (sorted, with HELP and TYPE lines)."""
    lines = [
        "# HELP rsyslog_stat A counter or gauge of rsyslog's impstats, by origin, object name and counter name.",
        "# TYPE rsyslog_stat gauge",
    ]
    for (origin, name, counter), value in sorted(values.items()):
        lines.append(
            f'rsyslog_stat{{origin="{label(origin)}",name="{label(name)}",counter="{label(counter)}"}} {value:g}'
        )
    lines += [
        "# HELP rsyslog_stats_last_update_timestamp_seconds When rsyslog last reported its counters.",
        "# TYPE rsyslog_stats_last_update_timestamp_seconds gauge",
        f"rsyslog_stats_last_update_timestamp_seconds {now:.0f}",
    ]
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (the collector never reads half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    tmp.chmod(0o644)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """Read impstats records from standard input until it closes (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", required=True, help="the .prom file in the textfile collector's directory")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds without input before writing")
    args = parser.parse_args(argv)
    output = Path(args.output)
    values: dict[tuple[str, str, str], float] = {}
    dirty = False
    pending = b""
    stdin = sys.stdin.fileno()
    while True:
        # Unbuffered reads: select() must see every byte rsyslog wrote that is not yet parsed.
        ready, _, _ = select.select([stdin], [], [], args.settle)
        if ready:
            chunk = os.read(stdin, 1 << 16)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    values.update(samples(record))
                    dirty = True
        elif dirty:
            write_atomically(output, render(values, time.time()))
            dirty = False
    if dirty:
        write_atomically(output, render(values, time.time()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
