"""The workflows and the scanners (issue #18).

Every workflow passes actionlint, check-jsonschema and zizmor; faults planted in a scratch tree (an
unpinned action, an attacker-controlled expression in a `run:` script, a hard-coded secret, insecure
Python and Ansible) are caught by the checkers and fail scripts/scan.sh; the deploy workflow runs
exactly the commands the README documents; scripts/deploy.sh rolls back when the release fails and
never prints the vault password.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")

# A clean workflow in this repository's style; each fault below is one edit of it.
CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1  # v7.0.1"
CLEAN = f"""---
name: planted
on:
  issues:
    types: [opened]
permissions:
  contents: read
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - uses: {CHECKOUT}
        with:
          persist-credentials: false
      - name: Greet
        env:
          TITLE: ${{{{ github.event.issue.title }}}}
        run: printf '%s\\n' "$TITLE"
"""
# Built at run time so that this file holds no secret-looking literal of its own.
FAKE_GITHUB_TOKEN = "ghp_" + "".join(chr(65 + (i * 7) % 26) for i in range(36))
FAULTS = {
    "unpinned action": (CHECKOUT, "actions/checkout@v7"),
    "event expression in run": ("""run: printf '%s\\n' "$TITLE\"""", 'run: echo "${{ github.event.issue.title }}"'),
    "hard-coded secret": ("          TITLE:", f"          GH_TOKEN: {FAKE_GITHUB_TOKEN}\n          TITLE:"),
}


def tool(name: str) -> str:
    """Path of a scanner installed in the project's virtualenv (a missing one fails the test)."""
    path = BIN / name
    assert path.exists(), f"{name} is not installed in .venv: run make venv"
    return str(path)


def run(*cmd: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output as text."""
    full_env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", **(env or {})}
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300)


def checkers() -> dict[str, list[str]]:
    """The three workflow checkers, as scripts/scan.sh calls them, minus the files to check."""
    return {
        "actionlint": [tool("actionlint")],
        "check-jsonschema": [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows"],
        "zizmor": [tool("zizmor"), "--offline", "--config", str(REPO / ".github" / "zizmor.yml")],
    }


def semgrep(*targets: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """semgrep with the repository's rules only, as scripts/scan.sh runs it."""
    return run(
        tool("semgrep"), "scan", "--metrics=off", "--disable-version-check", "--oss-only",
        "--config", str(REPO / ".semgrep"), "--error", *targets, cwd=cwd,
    )  # fmt: skip


def scratch_repo(root: Path, workflow: str) -> Path:
    """A git work tree holding one workflow, as scan.sh expects (it lists files with git)."""
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "planted.yml").write_text(workflow)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def planted(fault: str) -> str:
    """The clean workflow with one fault in it."""
    old, new = FAULTS[fault]
    assert old in CLEAN
    return CLEAN.replace(old, new, 1)


# --- the repository's workflows ---------------------------------------------------------------


def test_the_three_workflows_exist() -> None:
    assert {p.stem for p in WORKFLOWS} >= {"ci", "security", "deploy"}


@pytest.mark.parametrize("checker", ["actionlint", "check-jsonschema", "zizmor"])
def test_every_workflow_passes_the_checker(checker: str) -> None:
    result = run(*checkers()[checker], *map(str, WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr


def _load(path: Path) -> dict:
    # PyYAML reads the `on:` key as True.
    return yaml.safe_load(path.read_text())


def _steps(workflow: dict):
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_pinned_by_sha_read_only_permissions_no_credentials_left(path: Path) -> None:
    workflow = _load(path)
    assert workflow["permissions"] == {"contents": "read"}
    for job in workflow["jobs"].values():
        assert "permissions" not in job or all(v in ("read", "none") for v in job["permissions"].values())
    for job_id, step in _steps(workflow):
        if "uses" in step:
            assert SHA_PIN.match(step["uses"]), f"{path.name}/{job_id}: {step['uses']} is not pinned by commit"
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False
        assert "secrets." not in step.get("run", ""), f"{path.name}/{job_id}: a secret pasted into a script"


def test_deploy_environments_concurrency_and_secrets() -> None:
    deploy = _load(REPO / ".github" / "workflows" / "deploy.yml")
    assert deploy[True]["push"] == {"branches": ["main"], "tags": ["v*"]}
    assert deploy["concurrency"] == {"group": "deploy", "cancel-in-progress": False}
    jobs = deploy["jobs"]
    assert jobs["staging"]["environment"] == "staging"
    assert jobs["staging"]["if"] == "github.ref == 'refs/heads/main'"
    assert jobs["production"]["environment"] == "production"
    assert jobs["production"]["if"] == "startsWith(github.ref, 'refs/tags/v')"
    for job in jobs.values():
        for step in job["steps"]:
            if step.get("run", "").startswith("make "):
                vault = "${{ secrets.ETERNA_VAULT_PASSWORD }}"  # noqa: S105 - an expression naming the secret
                assert step["env"]["ETERNA_VAULT_PASSWORD"] == vault
                assert step["env"]["ETERNA_SSH_PRIVATE_KEY"] == "${{ secrets.ETERNA_SSH_PRIVATE_KEY }}"
        uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
        assert uploads and uploads[0]["with"]["path"] == "build/deploy/"
    # A release never restores a cache another workflow could have written.
    assert "actions/cache@" not in (REPO / ".github" / "workflows" / "deploy.yml").read_text()


def _readme_deploy_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("### Deployments", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README: no sh block under ### Deployments"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.split("#", 1)[0].strip()]


def test_deploy_workflow_runs_exactly_the_commands_the_readme_documents() -> None:
    deploy = _load(REPO / ".github" / "workflows" / "deploy.yml")
    workflow_commands = [step["run"].strip() for _, step in _steps(deploy) if "run" in step]
    assert workflow_commands == _readme_deploy_commands()


def test_documented_deploy_commands_reach_the_deploy_script() -> None:
    for command in _readme_deploy_commands():
        target, env = command.split()[1], command.split()[2].split("=")[1]
        action = {"deploy-check": "check", "release": "release"}[target]
        dry = run("make", "-n", target, f"ENV={env}")
        assert dry.returncode == 0, dry.stderr
        assert f"scripts/deploy.sh {action} {env}" in dry.stdout


def test_ci_molecule_matrix_is_the_scenarios_ci_runs() -> None:
    ci = _load(REPO / ".github" / "workflows" / "ci.yml")
    matrix = ci["jobs"]["molecule"]["strategy"]["matrix"]["scenario"]
    ci_text = (REPO / ".ci" / "run").read_text()
    ci_run = re.search(r'SCENARIOS="\$\{SCENARIOS:-([^}]*)\}"', ci_text)
    workflow_only = re.search(r'WORKFLOW_ONLY="([^"]*)"', ci_text)
    assert ci_run and workflow_only
    named = ci_run.group(1).split()
    left_out = workflow_only.group(1).split()
    # .ci/run leaves a scenario out only by naming it; the workflow runs each one .ci/run runs or leaves out.
    assert not {s.split("@")[0] for s in named} & set(left_out)
    assert set(matrix) | {"stack"} == {s.split("@")[0] for s in named} | set(left_out)
    assert all((REPO / "molecule" / s / "molecule.yml").exists() for s in matrix)
    # Every scenario in the tree runs somewhere: a new one neither run nor named by .ci/run fails here.
    assert {p.parent.name for p in (REPO / "molecule").glob("*/molecule.yml")} == (
        {s.split("@")[0] for s in named} | set(left_out)
    )
    # Both Debian releases in the workflow; .ci/run names its second-release runs with a known suite.
    assert ci["jobs"]["molecule"]["strategy"]["matrix"]["suite"] == ["trixie", "bookworm"]
    assert {s.split("@")[1] for s in named if "@" in s} <= {"trixie", "bookworm"}
    for job_id in ("molecule", "stack"):
        uploads = [s for s in ci["jobs"][job_id]["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
        assert uploads[0]["if"] == "always()" and uploads[0]["with"]["path"] == "build/test-logs/"


# --- planted faults ---------------------------------------------------------------------------


def test_clean_workflow_passes_every_checker(tmp_path: Path) -> None:
    """The control: the workflow the faults are planted in is clean, so a failure below is the fault's."""
    root = scratch_repo(tmp_path, CLEAN)
    for name, cmd in checkers().items():
        result = run(*cmd, ".github/workflows/planted.yml", cwd=root)
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
    assert semgrep(".github/workflows", cwd=root).returncode == 0
    secrets = run(tool("detect-secrets-hook"), "--baseline", str(_baseline_copy(tmp_path)), str(root / ".github"))
    assert secrets.returncode == 0, secrets.stdout


def _baseline_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "baseline.json"
    shutil.copy(REPO / ".secrets.baseline", copy)
    return copy


def test_unpinned_action_is_caught_by_zizmor(tmp_path: Path) -> None:
    root = scratch_repo(tmp_path, planted("unpinned action"))
    result = run(*checkers()["zizmor"], ".github/workflows/planted.yml", cwd=root)
    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout


def test_event_expression_in_run_is_caught_by_actionlint_zizmor_and_semgrep(tmp_path: Path) -> None:
    root = scratch_repo(tmp_path, planted("event expression in run"))
    actionlint = run(*checkers()["actionlint"], ".github/workflows/planted.yml", cwd=root)
    assert actionlint.returncode != 0
    assert '"github.event.issue.title" is potentially untrusted' in actionlint.stdout
    zizmor = run(*checkers()["zizmor"], ".github/workflows/planted.yml", cwd=root)
    assert zizmor.returncode != 0
    assert "template-injection" in zizmor.stdout
    found = semgrep(".github/workflows", cwd=root)
    assert found.returncode == 1
    assert "run-step-expression-injection" in found.stdout


def test_hard_coded_secret_is_caught_by_detect_secrets(tmp_path: Path) -> None:
    root = scratch_repo(tmp_path, planted("hard-coded secret"))
    result = run(
        tool("detect-secrets-hook"),
        "--baseline",
        str(_baseline_copy(tmp_path)),
        ".github/workflows/planted.yml",
        cwd=root,
    )
    assert result.returncode == 1
    assert "GitHub Token" in result.stdout
    assert "planted.yml:" in result.stdout


def test_scan_script_fails_on_the_faults_and_passes_the_clean_tree(tmp_path: Path) -> None:
    clean = run(str(REPO / "scripts" / "scan.sh"), env={"SCAN_ROOT": str(scratch_repo(tmp_path / "clean", CLEAN))})
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "FAILED" not in clean.stdout
    workflow = CLEAN
    for old, new in FAULTS.values():
        workflow = workflow.replace(old, new, 1)
    faulty = run(str(REPO / "scripts" / "scan.sh"), env={"SCAN_ROOT": str(scratch_repo(tmp_path / "faulty", workflow))})
    assert faulty.returncode == 1
    failed = set(re.findall(r"^--- (\S+): FAILED$", faulty.stdout, re.M))
    assert failed == {"semgrep", "detect-secrets", "actionlint", "zizmor"}, faulty.stdout


def _semgrep_findings(cwd: Path, *targets: str) -> dict[str, set[str]]:
    """Rule ids semgrep reports, by file."""
    result = run(
        tool("semgrep"), "scan", "--metrics=off", "--disable-version-check", "--oss-only",
        "--config", str(REPO / ".semgrep"), "--json", *targets, cwd=cwd,
    )  # fmt: skip
    findings: dict[str, set[str]] = {}
    for hit in json.loads(result.stdout)["results"]:
        findings.setdefault(hit["path"], set()).add(hit["check_id"].rsplit(".", 1)[-1])
    return findings


PYTHON_FAULTS = {
    "subprocess-shell-true": "import subprocess\nsubprocess.run(cmd, shell=True)\n",
    "yaml-unsafe-load": "import yaml\nyaml.load(text)\n",
    "tls-verification-disabled": "import requests\nrequests.get(url, verify=False)\n",
    "jwt-signature-not-verified": 'import jwt\njwt.decode(token, key, options={"verify_signature": False})\n',
    "sql-built-from-strings": "cursor.execute(f\"SELECT * FROM houses WHERE name = '{name}'\")\n",
    "pickle-load": "import pickle\npickle.loads(blob)\n",
}
YAML_FAULTS = {
    "ansible-tls-verification-disabled": "- name: Planted\n  ansible.builtin.get_url:\n    url: https://x\n"
    "    validate_certs: false\n",
    "ansible-world-writable-mode": '- name: Planted\n  ansible.builtin.file:\n    path: /srv/x\n    mode: "0777"\n',
    "secret-echoed": 'jobs:\n  a:\n    steps:\n      - run: |\n          curl -u "${{ secrets.TOKEN }}" x\n',
    "run-step-expression-injection": "jobs:\n  a:\n    steps:\n      - run: |\n          echo hi\n"
    '          echo "${{ github.head_ref }}"\n',
}
FIXED = {
    "fixed.py": "import subprocess\nimport yaml\nyaml.safe_load(text)\nyaml.load(text, Loader=yaml.SafeLoader)\n"
    "subprocess.run(['ls'])\ncursor.execute('SELECT * FROM houses WHERE name = %s', (name,))\n",
    "fixed_ansible.yml": '- name: Fixed\n  ansible.builtin.file:\n    path: /srv/x\n    mode: "0750"\n',
    "fixed_workflow.yml": "jobs:\n  a:\n    steps:\n      - env:\n          REF: ${{ github.head_ref }}\n"
    '        run: echo "$REF"\n',
}


def test_every_semgrep_rule_fires_on_its_fault_and_not_on_the_fix(tmp_path: Path) -> None:
    rules = set()
    for rule_file in (REPO / ".semgrep").glob("*.yml"):
        rules |= {r["id"] for r in yaml.safe_load(rule_file.read_text())["rules"]}
    assert rules == set(PYTHON_FAULTS) | set(YAML_FAULTS), "every rule has a planted fault here"
    for rule, code in PYTHON_FAULTS.items():
        (tmp_path / f"{rule}.py").write_text(code)
    for rule, code in YAML_FAULTS.items():
        (tmp_path / f"{rule}.yml").write_text("---\n" + code)
    for name, code in FIXED.items():
        (tmp_path / name).write_text("---\n" + code if name.endswith(".yml") else code)
    findings = _semgrep_findings(tmp_path, ".")
    for rule in rules:
        assert findings.get(f"{rule}.py", findings.get(f"{rule}.yml")) == {rule}, findings
    assert not set(FIXED) & set(findings), findings


def test_bandit_fails_on_medium_severity_and_passes_the_fix(tmp_path: Path) -> None:
    bad = tmp_path / "scripts" / "bad.py"
    bad.parent.mkdir()
    bad.write_text("import subprocess\n\n\ndef run(cmd):\n    return subprocess.run(cmd, shell=True)\n")
    args = ("-q", "-c", str(REPO / "pyproject.toml"), "--severity-level", "medium", "--confidence-level", "medium")
    result = run(tool("bandit"), *args, "-r", "scripts", cwd=tmp_path)
    assert result.returncode == 1
    assert "B602" in result.stdout
    bad.write_text("import subprocess\n\n\ndef run(cmd):\n    return subprocess.run(cmd)\n")
    assert run(tool("bandit"), *args, "-r", "scripts", cwd=tmp_path).returncode == 0


# --- scripts/deploy.sh ------------------------------------------------------------------------

STUB = """#!/usr/bin/env bash
# Records each call; fails the playbooks named in $FAIL; checks the vault password file on the way.
echo "$*" >> "$CALLS"
echo "stub: $*"
while [ $# -gt 0 ]; do
  case $1 in
    --vault-password-file) mode=$(stat -c %a "$2"); echo "vault $mode $(cat "$2")" >> "$CALLS"; shift ;;
  esac
  case " $FAIL " in *" $1 "*) exit 2 ;; esac
  shift
done
exit 0
"""
VAULT_WORDS = "planted-vault-pass-" + "x" * 8


def deploy(
    tmp_path: Path, action: str, fail: str = "", **env: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run scripts/deploy.sh with a stub ansible-playbook; return the result and the stub's calls."""
    stub = tmp_path / "ansible-playbook"
    stub.write_text(STUB)
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    calls = tmp_path / "calls"
    calls.write_text("")
    result = run(
        str(REPO / "scripts" / "deploy.sh"), action, "staging",
        env={"ANSIBLE_PLAYBOOK": str(stub), "CALLS": str(calls), "FAIL": fail,
             "ETERNA_VAULT_PASSWORD": VAULT_WORDS, **env},
    )  # fmt: skip
    return result, calls.read_text().splitlines()


def _playbooks(calls: list[str]) -> list[str]:
    return [c.split()[-1] for c in calls if not c.startswith("vault ")]


def test_release_migrates_then_deploys_and_never_prints_the_vault_password(tmp_path: Path) -> None:
    result, calls = deploy(tmp_path, "release")
    assert result.returncode == 0, result.stderr
    assert _playbooks(calls) == ["playbooks/migrate.yml", "playbooks/services/app.yml"]
    assert all(
        c.startswith("-i inventories/staging/hosts.yml --vault-password-file ") for c in calls if "playbooks/" in c
    )
    assert f"vault 600 {VAULT_WORDS}" in calls
    assert VAULT_WORDS not in result.stdout + result.stderr


def test_failed_health_gate_rolls_back_and_fails(tmp_path: Path) -> None:
    result, calls = deploy(tmp_path, "release", fail="playbooks/services/app.yml")
    assert result.returncode == 1
    assert _playbooks(calls) == ["playbooks/migrate.yml", "playbooks/services/app.yml", "playbooks/rollback.yml"]
    assert "rolled back" in result.stderr


def test_failed_migration_stops_before_the_app(tmp_path: Path) -> None:
    result, calls = deploy(tmp_path, "release", fail="playbooks/migrate.yml")
    assert result.returncode != 0
    assert _playbooks(calls) == ["playbooks/migrate.yml"]


def test_check_keeps_the_diff_and_passes_the_release_label(tmp_path: Path) -> None:
    log = REPO / "build" / "deploy" / "staging-check.log"
    log.unlink(missing_ok=True)
    result, calls = deploy(tmp_path, "check", RELEASE="v1.4.0")
    assert result.returncode == 0, result.stderr
    assert _playbooks(calls) == ["--diff"]
    assert "-e app_version=v1.4.0 playbooks/site.yml --check --diff" in calls[0]
    assert "stub: -i inventories/staging/hosts.yml" in log.read_text()
    assert VAULT_WORDS not in log.read_text()


def test_bad_release_label_is_refused(tmp_path: Path) -> None:
    result, calls = deploy(tmp_path, "release", RELEASE="1.0; rm -rf /")
    assert result.returncode == 2
    assert calls == []
