"""filter_plugins/tls.py: the SANs _common expects and the SANs openssl prints compare equal (issue #16 §1)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from ansible.errors import AnsibleFilterError
from module_loader import load_file

TLS = load_file("filter_plugins/tls.py", "eterna_filter_tls")
tls_sans = TLS.tls_sans
tls_sans_from_openssl = TLS.tls_sans_from_openssl

# What OpenSSL 3.0 prints for DNS:H1.example, DNS:localhost, IP:127.0.0.1, IP:fd00:10::11, IP:10.0.0.1.
OPENSSL_TEXT = (
    "X509v3 Subject Alternative Name: \n"
    "    DNS:H1.example, DNS:localhost, IP Address:127.0.0.1, IP Address:FD00:10:0:0:0:0:0:11, IP Address:10.0.0.1\n"
)
EXPECTED = ["DNS:h1.example", "DNS:localhost", "IP:10.0.0.1", "IP:127.0.0.1", "IP:fd00:10::11"]


def test_openssl_output_parses_to_the_normal_form():
    assert tls_sans_from_openssl(OPENSSL_TEXT) == EXPECTED


def test_the_roles_form_matches_openssls():
    ours = ["IP:fd00:10::11", "DNS:localhost", "DNS:H1.example", "IP:127.0.0.1", "IP:10.0.0.1", "DNS:localhost"]
    assert tls_sans(ours) == tls_sans_from_openssl(OPENSSL_TEXT)


def test_lines_before_the_header_are_ignored():
    text = "root:redis:750\nredis:redis:644\n" + OPENSSL_TEXT
    assert tls_sans_from_openssl(text) == EXPECTED


@pytest.mark.parametrize("text", ["", "root:root:750\n", "No extensions in certificate\n"])
def test_no_san_extension_gives_nothing(text):
    assert tls_sans_from_openssl(text) == []


def test_a_missing_or_extra_name_differs():
    assert tls_sans(EXPECTED[:-1]) != tls_sans_from_openssl(OPENSSL_TEXT)
    assert tls_sans([*EXPECTED, "DNS:other"]) != tls_sans_from_openssl(OPENSSL_TEXT)


def test_an_unparsable_printed_entry_is_kept_as_printed():
    text = "X509v3 Subject Alternative Name: \n    IP Address:<invalid>, email:a@b\n"
    assert tls_sans_from_openssl(text) == ["IP Address:<invalid>", "email:a@b"]


@pytest.mark.parametrize("bad", ["DNS:a", None, 3, ["DNS:a", 3], ["nocolon"], ["IP:300.1.1.1"], ["DNS:"]])
def test_bad_expected_names_are_refused(bad):
    with pytest.raises(AnsibleFilterError):
        tls_sans(bad)


def test_bad_openssl_input_is_refused():
    with pytest.raises(AnsibleFilterError):
        tls_sans_from_openssl(None)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_a_real_certificate(tmp_path):
    names = ["DNS:H1.example", "DNS:localhost", "IP:127.0.0.1", "IP:fd00:10::11", "IP:10.0.0.1"]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=h1"]
        + ["-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem")]
        + ["-addext", "subjectAltName=" + ",".join(names)],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        ["openssl", "x509", "-in", str(tmp_path / "c.pem"), "-noout", "-ext", "subjectAltName"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert tls_sans_from_openssl(out) == tls_sans(names) == EXPECTED
