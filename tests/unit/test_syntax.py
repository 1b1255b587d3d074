"""Unit and property tests for filter_plugins/syntax.py and roles/app/files/envfile.py.

Each quoting helper's output is parsed back by the consumer's own parser where one runs here:
- URL user-info and hosts: urllib.parse, redis-py's parse_url, kombu's parse_url, SQLAlchemy's make_url;
- .pgpass: libpq itself (psycopg's), talking to a stub server that asks for a cleartext password;
- libpq connection strings: libpq's PQconninfoParse (psycopg.conninfo.conninfo_to_dict);
- postgresql.conf strings: ``postgres -C`` (PostgreSQL 15's own configuration lexer), when installed;
- systemd environment files: systemd itself is not PID 1 here, so the faithful reader the wrappers use
  (envfile.py, a transcription of systemd's env-file.c) and, as an independent cross-check, /bin/sh; the app
  Molecule scenario compares the environment systemd gives eterna-api with the wrapper's.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given, settings
from hypothesis import strategies as st

REPO_ROOT = Path(__file__).resolve().parents[2]
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))  # every printable ASCII character, space included
HOSTILE = "tok$HOME`id -u`x"  # the example: expanded and executed by a shell
SLASHED = "Kp9/Qz2+Lm7="  # the example: '/' left as is by urlencode


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


syn = _load("eterna_filter_syntax", REPO_ROOT / "filter_plugins" / "syntax.py")
envfile = _load("eterna_envfile", REPO_ROOT / "roles" / "app" / "files" / "envfile.py")

texts = st.text(alphabet=PRINTABLE, max_size=40)
secrets_ = st.text(alphabet=PRINTABLE, min_size=1, max_size=40)


# --------------------------------------------------------------------------------------------------------------
# URLs


def _url(scheme: str, user: str, password: str, host: str, port: int, path: str = "0") -> str:
    return f"{scheme}://{syn.url_component(user)}:{syn.url_component(password)}@{syn.host_port(host, port)}/{path}"


def test_url_component_encodes_slash_unlike_urlencode():
    assert syn.url_component(SLASHED) == "Kp9%2FQz2%2BLm7%3D"
    assert syn.url_component("a b@c:d%") == "a%20b%40c%3Ad%25"
    assert syn.url_component(5672) == "5672"


@pytest.mark.parametrize("value", [PRINTABLE, SLASHED, HOSTILE])
def test_url_every_printable_character_round_trips(value):
    url = _url("redis", value, value, "2001:db8::11", 6379)
    parts = urllib.parse.urlsplit(url)
    assert (urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password)) == (value, value)
    assert (parts.hostname, parts.port) == ("2001:db8::11", 6379)


@settings(max_examples=300, deadline=None)
@given(user=texts, password=secrets_, host=st.sampled_from(["10.0.0.5", "2001:db8::11", "cache-1.internal"]))
def test_redis_py_parses_the_url(user, password, host):
    from redis.connection import parse_url

    parsed = parse_url(_url("rediss", user, password, host, 6380, "2"))
    assert parsed["password"] == password
    assert parsed.get("username") == (user or None)
    assert (parsed["host"], parsed["port"], parsed["db"]) == (host, 6380, 2)


@settings(max_examples=300, deadline=None)
@given(user=secrets_, password=secrets_, vhost=secrets_, host=st.sampled_from(["10.0.0.5", "2001:db8::11"]))
def test_kombu_parses_the_broker_url(user, password, vhost, host):
    from kombu.utils.url import parse_url

    parsed = parse_url(_url("amqps", user, password, host, 5671, syn.url_component(vhost)))
    assert (parsed["userid"], parsed["password"], parsed["virtual_host"]) == (user, password, vhost)
    assert (parsed["hostname"], parsed["port"]) == (host, 5671)


@settings(max_examples=300, deadline=None)
@given(user=secrets_, password=secrets_, host=st.sampled_from(["10.0.0.5", "2001:db8::11"]))
def test_sqlalchemy_parses_the_database_url(user, password, host):
    from sqlalchemy.engine import make_url

    url = make_url(_url("postgresql+psycopg", user, password, host, 5432, "eterna?sslmode=verify-full"))
    assert (url.username, url.password, url.host, url.port, url.database) == (user, password, host, 5432, "eterna")
    assert url.query["sslmode"] == "verify-full"


def test_urlencode_would_break_the_url():
    """The regression the helper fixes: with '/' left as is, the URL parser reads the password as a port."""
    naive = "redis://eterna:" + urllib.parse.quote(SLASHED, safe="/") + "@10.0.0.5:6379/0"
    with pytest.raises(ValueError):
        urllib.parse.urlsplit(naive).port  # noqa: B018 - the property access raises


# --------------------------------------------------------------------------------------------------------------
# hosts and ports


@settings(max_examples=200)
@given(address=st.ip_addresses(), port=st.integers(1, 65535))
def test_host_port_is_read_back_by_the_url_parser(address, port):
    parts = urllib.parse.urlsplit("//" + syn.host_port(str(address), port))
    assert ipaddress.ip_address(parts.hostname) == address
    assert parts.port == port


def test_host_port_vectors():
    assert syn.host_port("2001:db8:10::11", 8000) == "[2001:db8:10::11]:8000"
    assert syn.host_port("[2001:DB8:0::1]", "443") == "[2001:db8::1]:443"
    assert syn.host_port("10.0.0.5", 5432) == "10.0.0.5:5432"
    assert syn.host_port("lab-db1", 5432) == "lab-db1:5432"
    assert syn.url_host("fd00::1") == "[fd00::1]"


@pytest.mark.parametrize(
    ("host", "port", "message"),
    [
        ("10.0.0.5", 0, "app_redis_host port must be a port number between 1 and 65535, got 0"),
        ("10.0.0.5", 99999, "between 1 and 65535, got 99999"),
        ("10.0.0.5", "lots", "got 'lots'"),
        ("10.0.0.5", True, "got bool"),
        ("evil.com/x", 80, "app_redis_host 'evil.com/x' is neither an IP address nor a host name"),
        ("a b", 80, "neither an IP address nor a host name"),
        ("user@host", 80, "neither an IP address nor a host name"),
        ("[lab-db1]", 80, "neither an IP address nor a host name"),
        ("999.1.1.1", 80, "neither an IP address nor a host name"),
        ("fe80::1%eth0", 80, "zone identifier"),
        (None, 80, "app_redis_host is missing"),
    ],
)
def test_host_port_refuses_naming_the_input(host, port, message):
    with pytest.raises(AnsibleFilterError, match=message.replace("(", r"\(").replace("[", r"\[")):
        syn.host_port(host, port, "app_redis_host")


def test_ip_family_splits_sources():
    sources = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7", "::1"]
    assert syn.ip_family(sources, 4) == ["10.0.0.0/8", "192.0.2.7"]
    assert syn.ip_family(sources, "6") == ["2001:db8::/32", "::1"]
    with pytest.raises(AnsibleFilterError, match="base_ssh_allowed_sources: 'anywhere'"):
        syn.ip_family(["anywhere"], 4, "base_ssh_allowed_sources")
    with pytest.raises(AnsibleFilterError, match="must be a list"):
        syn.ip_family("10.0.0.0/8", 4)
    with pytest.raises(AnsibleFilterError, match="family must be 4 or 6"):
        syn.ip_family([], 5)


# --------------------------------------------------------------------------------------------------------------
# systemd environment files


def _env_file(values: dict[str, str]) -> str:
    return "".join(f"{name}={syn.systemd_env_quote(value)}\n" for name, value in values.items())


def test_systemd_env_quote_vectors():
    assert syn.systemd_env_quote(HOSTILE) == '"tok\\$HOME\\`id -u\\`x"'
    assert syn.systemd_env_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert syn.systemd_env_quote(" # ; ' ") == '" # ; \' "'
    assert syn.systemd_env_quote(42) == '"42"'


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a\nb", "line break"),
        ("a\rb", "line break"),
        ("a\x00", "NUL"),
        (True, "got bool"),
        (None, "missing"),
        (["x"], "must be a string, got list"),
    ],
)
def test_systemd_env_quote_refuses_naming_the_input(value, message):
    with pytest.raises(AnsibleFilterError, match=f"app_extra_env.X.*{message}"):
        syn.systemd_env_quote(value, "app_extra_env.X")


@settings(max_examples=500)
@given(values=st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), texts, max_size=6))
def test_env_file_round_trips_through_systemds_grammar(values):
    assert envfile.parse(_env_file(values)) == values


def test_env_file_round_trips_through_sh(tmp_path):
    """Cross-check with a second, independent parser: the quoted text means the same string to /bin/sh."""
    values = {f"C{ord(c)}": c for c in PRINTABLE} | {"ALL": PRINTABLE, "HOSTILE": HOSTILE, "EMPTY": ""}
    path = tmp_path / "app.env"
    path.write_text("# comment\n" + _env_file(values))
    assert envfile.parse(path.read_text()) == values
    dump = "import json, os; print(json.dumps(dict(os.environ)))"
    out = subprocess.run(
        ["/bin/sh", "-c", 'set -a; . "$1"; exec python3 -c "$2"', "sh", str(path), dump],
        capture_output=True,
        check=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout
    environ = json.loads(out)
    assert {name: environ.get(name) for name in values} == values


def test_envfile_reader_follows_systemd_exec_5():
    """Vectors from systemd.exec(5), EnvironmentFile=, and systemd's test-env-file.c."""
    text = (
        "# comment\n"
        "; also a comment\n"
        "UNQUOTED=  a b  c   \n"  # leading and trailing whitespace dropped, interior kept
        "ESCAPED=a\\ b\\\\c\\$d\n"  # unquoted: backslash preserves the next character
        "SINGLE='a \\ \" $x'\n"  # single quotes: verbatim
        'DOUBLE="a \\" \\\\ \\` \\$ \\n"\n'  # double quotes: \\n keeps its backslash
        "CONT=one\\\ntwo\n"  # backslash-newline continues the line
        "MULTI='line1\nline2'\n"
        "JOINED=\"a\"'b'c\n"
        "1BAD=ignored\n"
        "NOEQUALS\n"
        "EMPTY=\n"
        "LAST=final"
    )
    assert envfile.parse(text) == {
        "UNQUOTED": "a b  c",
        "ESCAPED": "a b\\c$d",
        "SINGLE": 'a \\ " $x',
        "DOUBLE": 'a " \\ ` $ \\n',
        "CONT": "onetwo",
        "MULTI": "line1\nline2",
        "JOINED": "abc",
        "EMPTY": "",
        "LAST": "final",
    }


def test_envfile_main_runs_the_command_without_a_shell(tmp_path):
    path = tmp_path / "app.env"
    marker = tmp_path / "executed"
    value = f"$(touch {marker})`touch {marker}`"
    path.write_text(f"X={syn.systemd_env_quote(value)}\n")
    out = subprocess.run(
        ["python3", str(REPO_ROOT / "roles/app/files/envfile.py"), str(path), "printenv", "X"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert out == value + "\n"
    assert not marker.exists()


def test_env_name():
    assert syn.env_name("JWT_SECRET") == "JWT_SECRET"
    for bad in ["1X", "A-B", "A B", ""]:
        with pytest.raises(AnsibleFilterError, match="not a valid environment variable name"):
            syn.env_name(bad)


# --------------------------------------------------------------------------------------------------------------
# libpq: .pgpass (read by libpq itself) and connection strings


class _PasswordCatcher:
    """A stub PostgreSQL server: takes one startup packet, asks for a cleartext password, records it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.sock.bind(("::1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.password: str | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _recv(self, conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        return data

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            try:
                length = struct.unpack("!I", self._recv(conn, 4))[0]
                self._recv(conn, length - 4)  # startup packet
                conn.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
                kind = self._recv(conn, 1)
                length = struct.unpack("!I", self._recv(conn, 4))[0]
                body = self._recv(conn, length - 4)
                if kind == b"p":
                    self.password = body.rstrip(b"\0").decode()
                error = b"SFATAL\0C28P01\0Mstub\0\0"
                conn.sendall(b"E" + struct.pack("!I", len(error) + 4) + error)
            except (ConnectionError, OSError):
                pass

    def close(self) -> None:
        self.thread.join(timeout=5)
        self.sock.close()


def _libpq_password(passfile: Path, lines: Callable[[int], str], user: str, dbname: str) -> str | None:
    """Write ``lines(port)`` to the password file, connect with libpq, return the password the server received."""
    psycopg = pytest.importorskip("psycopg")
    server = _PasswordCatcher()
    passfile.write_text(lines(server.port))
    passfile.chmod(0o600)
    try:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(
                host="::1",
                port=server.port,
                user=user,
                dbname=dbname,
                passfile=str(passfile),
                sslmode="disable",
                gssencmode="disable",
                connect_timeout=5,
            )
    finally:
        server.close()
    return server.password


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")


def test_pgpass_vectors():
    assert syn.pgpass_field("fd00::11") == "fd00\\:\\:11"
    assert syn.pgpass_field("a\\b*#") == "a\\\\b\\*\\#"
    assert syn.pgpass_line("p:w", "::1", 5432, "replication", "rep") == "\\:\\:1:5432:replication:rep:p\\:w"
    with pytest.raises(AnsibleFilterError, match="password contains a line break"):
        syn.pgpass_line("a\nb", "h", 1, "d", "u")


@needs_ipv6
@settings(max_examples=40, deadline=None)
@given(password=secrets_, user=st.text(alphabet=PRINTABLE, min_size=1, max_size=20))
def test_libpq_reads_the_password_back(tmp_path_factory, password, user):
    passfile = tmp_path_factory.mktemp("pgpass") / ".pgpass"
    assert (
        _libpq_password(
            passfile,
            lambda port: f"*:*:other:*:wrong\n{syn.pgpass_line(password, '::1', port, 'replication', user)}\n",
            user,
            "replication",
        )
        == password
    )


@needs_ipv6
def test_libpq_every_printable_character(tmp_path):
    line = lambda port: syn.pgpass_line(PRINTABLE, "::1", port, "replication", PRINTABLE) + "\n"  # noqa: E731
    assert _libpq_password(tmp_path / ".pgpass", line, PRINTABLE, "replication") == PRINTABLE


@needs_ipv6
def test_unescaped_colon_cuts_the_password(tmp_path):
    """The regression, shown with libpq: a field written without escaping is read differently."""
    intended = "Kp9/Qz2:Lm7="
    line = lambda port: f"::1:{port}:replication:rep:{intended}\n"  # noqa: E731
    assert _libpq_password(tmp_path / ".pgpass", line, "rep", "replication") == "Kp9/Qz2"


@settings(max_examples=300, deadline=None)
@given(value=texts)
def test_libpq_parses_the_connection_string(value):
    conninfo = pytest.importorskip("psycopg.conninfo")
    parsed = conninfo.conninfo_to_dict(
        f"host={syn.conninfo_quote('fd00::11')} user={syn.conninfo_quote(value)} passfile={syn.conninfo_quote(value)}"
    )
    assert parsed == {"host": "fd00::11", "user": value, "passfile": value}


def _postgres_binary() -> str | None:
    for version in (15, 16, 17):
        path = f"/usr/lib/postgresql/{version}/bin/postgres"
        if Path(path).exists():
            return path
    return shutil.which("postgres")


@pytest.mark.skipif(_postgres_binary() is None, reason="PostgreSQL server binaries not installed")
@pytest.mark.skipif(shutil.which("runuser") is None, reason="runuser not available")
def test_postgres_reads_the_conf_string_back():
    """``postgres -C`` prints a parameter as PostgreSQL's own lexer read it (it refuses to run as root)."""
    user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    for value in [PRINTABLE, "it's", "C:\\path\\n", "", HOSTILE, "\\'"]:
        datadir = Path(tempfile.mkdtemp(prefix="eterna-pgconf-"))  # readable by nobody, unlike pytest's tmp_path
        try:
            datadir.chmod(0o755)
            conf = datadir / "postgresql.conf"
            conf.write_text(f"log_line_prefix = {syn.postgres_conf_string(value)}\n")
            conf.chmod(0o644)
            out = subprocess.run(
                [*user, _postgres_binary(), "-D", str(datadir), "-C", "log_line_prefix"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            assert out == value + "\n"
        finally:
            shutil.rmtree(datadir)


def test_filter_module_maps_every_helper():
    filters = syn.FilterModule().filters()
    assert filters["host_port"] is syn.host_port
    assert set(filters) == {
        "url_component",
        "url_host",
        "port_number",
        "host_port",
        "ip_family",
        "nftables_accept_rules",
        "env_name",
        "systemd_env_quote",
        "pgpass_field",
        "pgpass_line",
        "conninfo_quote",
        "postgres_conf_string",
        "nginx_string",
        "rsyslog_string",
    }
