"""After every refusal case of converge.yml, the host must be exactly as before: nothing of MinIO on it."""

from eterna_testinfra import node

HOST = "minio_checksum-target"


def test_no_binary_was_installed():
    out = node(HOST).run("ls /usr/local/bin/ | grep -E '^(minio|mc)' || true").stdout
    assert out.strip() == "", f"binaries installed despite the refusal: {out}"


def test_no_user_config_data_or_unit_was_created():
    host = node(HOST)
    assert not host.user("minio").exists
    for path in ("/etc/minio", "/var/lib/minio", "/etc/default/minio", "/etc/systemd/system/minio.service"):
        assert not host.file(path).exists, f"{path} was created"
