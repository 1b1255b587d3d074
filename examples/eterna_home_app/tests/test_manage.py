"""python -m app.manage create-owner."""

from __future__ import annotations

import io

import pytest


def run(monkeypatch, capsys, args, stdin):
    from app import manage

    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = manage.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


ARGS = ["create-owner", "--tenant", "demo", "--email", "Owner@Demo.example"]


def test_create_owner_is_idempotent(client, monkeypatch, capsys):
    assert run(monkeypatch, capsys, ARGS, "first password 123\n")[:2] == (0, "created\n")
    assert run(monkeypatch, capsys, ARGS, "other password 456\n")[:2] == (0, "exists\n")
    ok = client.post("/api/v1/auth/token", data={"username": "owner@demo.example", "password": "first password 123"})
    assert ok.status_code == 200 and (ok.json()["tenant"], ok.json()["role"]) == ("demo", "owner")
    wrong = client.post("/api/v1/auth/token", data={"username": "owner@demo.example", "password": "other password 456"})
    assert wrong.status_code == 401


def test_create_owner_promotes_an_existing_member(client, world, monkeypatch, capsys):
    world.user("someone@demo.example", {"demo": "viewer"})
    args = ["create-owner", "--tenant", "demo", "--email", "someone@demo.example"]
    assert run(monkeypatch, capsys, args, "")[:2] == (0, "created\n")
    login = client.post(
        "/api/v1/auth/token", data={"username": "someone@demo.example", "password": "correct horse battery staple"}
    )
    assert login.json()["role"] == "owner"
    assert run(monkeypatch, capsys, args, "")[:2] == (0, "exists\n")


def test_create_owner_refuses_an_account_of_another_tenant_without_existing_user(client, world, monkeypatch, capsys):
    # An account someone else created first (e-mail addresses are not verified) must not silently become the
    # owner of a new tenant; the operator checks who holds it and says so with --existing-user.
    world.user("owner@newco.example", {"demo": "viewer"})
    args = ["create-owner", "--tenant", "newco", "--email", "owner@newco.example"]
    code, out, err = run(monkeypatch, capsys, args, "operator password 1\n")
    assert (code, out) == (2, "")
    assert "--existing-user" in err
    login = client.post(
        "/api/v1/auth/token",
        data={"username": "owner@newco.example", "password": "correct horse battery staple", "tenant": "newco"},
    )
    assert login.status_code == 403, "no membership of newco, and the tenant was not created half-way"
    assert run(monkeypatch, capsys, [*args, "--existing-user"], "")[:2] == (0, "created\n")
    login = client.post(
        "/api/v1/auth/token",
        data={"username": "owner@newco.example", "password": "correct horse battery staple", "tenant": "newco"},
    )
    assert login.json()["role"] == "owner"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["create-owner", "--tenant", "Bad Tenant", "--email", "a@b.example"], "long enough password\n", "--tenant"),
        (["create-owner", "--tenant", "demo", "--email", "not-an-email"], "long enough password\n", "--email"),
        (["create-owner", "--tenant", "demo", "--email", "a@b.example"], "short\n", "password"),
        (["create-owner", "--tenant", "demo", "--email", "a@b.example"], "", "password"),
    ],
)
def test_create_owner_bad_input(client, monkeypatch, capsys, args, stdin, message):
    code, out, err = run(monkeypatch, capsys, args, stdin)
    assert code == 2 and out == "" and message in err
    assert "long enough password" not in err


def test_create_owner_needs_its_arguments(client, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exc:
        run(monkeypatch, capsys, ["create-owner", "--tenant", "demo"], "")
    assert exc.value.code == 2


def test_an_unexpected_error_exits_5_not_1(monkeypatch, capsys):
    """erase-tenant's callers read 1 as "erased, something remains": a crash must not look like that."""
    from app import manage

    def unreachable(*_args, **_kwargs):
        raise ConnectionError("object store unreachable")

    monkeypatch.setattr(manage, "erase_command", unreachable)
    code, out, err = run(monkeypatch, capsys, ["erase-tenant", "--tenant", "acme", "--confirm", "acme"], "")
    assert (code, out) == (5, "")
    assert "erase-tenant: failed: ConnectionError('object store unreachable')" in err


# --- The S3 identity of erasure (--s3-identity) --------------------------------------------------------------

IDENTITY = {"access_key_id": "AKERASURE0000000001", "secret_access_key": "erasure/secret+with$chars=="}


def credentials(client) -> tuple[str, str]:
    creds = client._request_signer._credentials  # noqa: SLF001 - what botocore will sign with
    return creds.access_key, creds.secret_key


def record_erasure_client(monkeypatch, manage) -> dict:
    """Replace the erasure itself: the returned dict gets the credentials of the S3 client it was given."""
    used: dict = {}

    def fake_erase(tenant, actor, backups_gone_by, s3):
        used["creds"] = credentials(s3)
        return 0, {"record_id": "r1", "complete": True}

    monkeypatch.setattr(manage, "_erase", fake_erase)
    return used


def test_erasure_lists_and_deletes_with_the_identity_given_on_stdin(monkeypatch, capsys):
    """The playbook pipes the object store's administrator identity: erasure must use it, not the app's."""
    import json

    from app import manage

    used = record_erasure_client(monkeypatch, manage)
    args = ["erase-tenant", "--tenant", "acme", "--confirm", "acme", "--s3-identity", "-"]
    code, out, _err = run(monkeypatch, capsys, args, json.dumps(IDENTITY))
    assert code == 0
    assert used["creds"] == (IDENTITY["access_key_id"], IDENTITY["secret_access_key"])
    assert IDENTITY["secret_access_key"] not in out


def test_erasure_without_an_identity_uses_the_app_s_own(monkeypatch, capsys):
    from app import manage
    from app.config import get_settings

    used = record_erasure_client(monkeypatch, manage)
    manage.s3_client.cache_clear()
    code, _out, _err = run(monkeypatch, capsys, ["erase-tenant", "--tenant", "acme", "--confirm", "acme"], "")
    settings = get_settings()
    assert code == 0
    assert used["creds"] == (settings.S3_ACCESS_KEY_ID, settings.S3_SECRET_ACCESS_KEY)


def test_the_retention_job_reads_the_identity_from_a_file(monkeypatch, capsys, tmp_path):
    """eterna-retention.service hands the identity as a systemd credential (a file)."""
    import json

    from app import manage

    path = tmp_path / "s3-erasure"
    path.write_text(json.dumps(IDENTITY))
    assert credentials(manage._erasure_s3(str(path))) == (IDENTITY["access_key_id"], IDENTITY["secret_access_key"])


@pytest.mark.parametrize(
    "stdin",
    [
        "",
        "not json " + IDENTITY["secret_access_key"],
        '{"access_key_id": "AK"}',
        '{"access_key_id": "", "secret_access_key": "' + IDENTITY["secret_access_key"] + '"}',
        '["AK", "' + IDENTITY["secret_access_key"] + '"]',
    ],
)
def test_a_bad_identity_erases_nothing_and_is_not_shown(monkeypatch, capsys, stdin):
    from app import manage

    def unreachable(*_args, **_kwargs):
        raise AssertionError("erased with a bad identity")

    monkeypatch.setattr(manage, "_erase", unreachable)
    args = ["erase-tenant", "--tenant", "acme", "--confirm", "acme", "--s3-identity", "-"]
    code, out, err = run(monkeypatch, capsys, args, stdin)
    assert code == 2
    assert "S3 identity -" in err
    assert IDENTITY["secret_access_key"] not in out + err
