"""nginx and rsyslog strings (filter_plugins/syntax.py nginx_string, rsyslog_string), read back by nginx and rsyslogd.

Issue #24 section 1: every printable ASCII character goes through each helper and the consumer's own parser reads it
back.  nginx serves each quoted value with ``return 200 <value>`` (the same "complex value" compiler as
``add_header``); rsyslogd assigns each to a variable with ``set`` and writes it to a file with omfile.  Both run
here as unprivileged children on a scratch directory, not as services; a missing binary skips with the reason
(``ETERNA_RSYSLOGD`` names an rsyslogd outside PATH, e.g. one unpacked with ``dpkg -x``).
"""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

REPO_ROOT = Path(__file__).resolve().parents[2]
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))  # every printable ASCII character, space included

_spec = importlib.util.spec_from_file_location("eterna_filter_syntax_cs", REPO_ROOT / "filter_plugins" / "syntax.py")
assert _spec is not None and _spec.loader is not None
syn = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(syn)


def _values(alphabet: str) -> list[str]:
    """Each character alone and between letters, the whole alphabet, injection attempts, and 150 random strings."""
    rng = random.Random(24)  # noqa: S311 - test data, fixed so every run sends the same values
    values = list(alphabet) + [f"a{c}b" for c in alphabet] + [alphabet, alphabet[::-1]]
    values += ['x" always; add_header X-Evil "1', "x'; return 500; #", "ab\\", '\\"', "{ } ; # '", "  lead and trail  "]
    values += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(150)]
    return [v for v in values if all(c in alphabet for c in v)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------------------------
# nginx


def test_nginx_string_vectors():
    assert syn.nginx_string("default-src 'self'; img-src data:") == "\"default-src 'self'; img-src data:\""
    assert syn.nginx_string('a"b\\c') == '"a\\"b\\\\c"'
    assert syn.nginx_string(3600) == '"3600"'


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nonce-$request_id", r"nginx_csp contains '\$', which nginx reads as a variable"),
        ("a\nadd_header X 1", r"nginx_csp contains control characters \(0x0a\)"),
        ("a\x00", r"nginx_csp contains control characters \(0x00\)"),
        (None, "nginx_csp is missing"),
        (True, "nginx_csp must be a string, got bool"),
    ],
)
def test_nginx_string_refuses_naming_the_variable(value, message):
    with pytest.raises(AnsibleFilterError, match=message):
        syn.nginx_string(value, "nginx_csp")


def test_nginx_reads_every_printable_character_back(tmp_path: Path):
    nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
    if nginx is None:
        pytest.skip("nginx not installed (apt-get install nginx-light); the nginx scenario renders it in a container")
    values = _values(PRINTABLE.replace("$", ""))
    port = _free_port()
    locations = "\n".join(f"    location = /v{i} {{ return 200 {syn.nginx_string(v)}; }}" for i, v in enumerate(values))
    temp = "".join(f"{d}_temp_path {tmp_path}/{d};\n  " for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"daemon off;\nmaster_process off;\npid {tmp_path}/nginx.pid;\nerror_log stderr;\n"
        f"events {{ worker_connections 64; }}\n"
        f"http {{\n  {temp}access_log off;\n  default_type application/octet-stream;\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n{locations}\n  }}\n}}\n"
    )
    check = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(conf)], capture_output=True)
    assert check.returncode == 0, check.stderr.decode()
    server = subprocess.Popen([nginx, "-p", str(tmp_path), "-e", "stderr", "-c", str(conf)], stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        for i, value in enumerate(values):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v{i}", timeout=10) as answer:  # noqa: S310 - local
                assert answer.read().decode("ascii") == value, (i, value)
    finally:
        server.send_signal(signal.SIGQUIT)
        server.wait(timeout=30)


# --------------------------------------------------------------------------------------------------------------
# rsyslog (RainerScript)


def test_rsyslog_string_vectors():
    assert syn.rsyslog_string("Kp9/Qz2+Lm7=") == '"Kp9/Qz2+Lm7="'
    assert syn.rsyslog_string('pw" server="evil') == '"pw\\" server=\\"evil"'
    assert syn.rsyslog_string("a$b\\c") == '"a\\$b\\\\c"'


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a\nb", r"rsyslog_elasticsearch_password contains control characters \(0x0a\)"),
        ("a\tb", r"rsyslog_elasticsearch_password contains control characters \(0x09\)"),
        (None, "rsyslog_elasticsearch_password is missing"),
        (["x"], "rsyslog_elasticsearch_password must be a string, got list"),
    ],
)
def test_rsyslog_string_refuses_naming_the_variable(value, message):
    with pytest.raises(AnsibleFilterError, match=message):
        syn.rsyslog_string(value, "rsyslog_elasticsearch_password")


def test_rsyslogd_reads_every_printable_character_back(tmp_path: Path):
    rsyslogd = os.environ.get("ETERNA_RSYSLOGD") or shutil.which("rsyslogd")
    if not rsyslogd:
        pytest.skip("rsyslogd not installed (apt-get install rsyslog, or ETERNA_RSYSLOGD=<path>)")
    logger = shutil.which("logger")
    if not logger:
        pytest.skip("logger (bsdutils) not installed")
    values = _values(PRINTABLE)
    sock = tmp_path / "sock"
    lines = [
        f'global(workDirectory="{tmp_path}")',
        'module(load="imuxsock" SysSock.Use="off")',
        f'input(type="imuxsock" Socket="{sock}" ruleset="probe")',
    ]
    lines += [f'template(name="t{i}" type="list") {{ property(name="$.v{i}") }}' for i in range(len(values))]
    lines.append('ruleset(name="probe") {')
    for i, value in enumerate(values):
        lines.append(f"  set $.v{i} = {syn.rsyslog_string(value)};")
        lines.append(f'  action(type="omfile" file="{tmp_path}/out{i}" template="t{i}")')
    lines.append("}")
    conf = tmp_path / "rsyslog.conf"
    conf.write_text("\n".join(lines) + "\n")
    check = subprocess.run([rsyslogd, "-N1", "-f", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    daemon = subprocess.Popen([rsyslogd, "-n", "-iNONE", "-f", str(conf)], stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.1)
        subprocess.run([logger, "-u", str(sock), "probe"], check=True)
        last = tmp_path / f"out{len(values) - 1}"
        for _ in range(100):
            if last.exists() and last.stat().st_size > 0:
                break
            time.sleep(0.1)
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    for i, value in enumerate(values):
        assert (tmp_path / f"out{i}").read_text() == value, (i, value)
