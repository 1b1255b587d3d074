"""The static check of the calls of ``_common``'s helpers (scripts/check-argument-specs.py), which replaces Ansible's
per-call validation task (the calls pass ``rolespec_validate: false``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from module_loader import load_file

specs = load_file("scripts/check-argument-specs.py", "check_argument_specs")
ROOT = Path(__file__).resolve().parents[2]


def _tree(tmp_path: Path, tasks: str) -> Path:
    """A repository with _common's argument specs and one role task file holding ``tasks``."""
    (tmp_path / "roles/_common/meta").mkdir(parents=True)
    shutil.copy(ROOT / "roles/_common/meta/argument_specs.yml", tmp_path / "roles/_common/meta/argument_specs.yml")
    (tmp_path / "roles/web/tasks").mkdir(parents=True)
    (tmp_path / "roles/web/tasks/main.yml").write_text(tasks)
    return tmp_path


def test_the_repository_calls_fit_the_specs():
    assert specs.check_common_calls(ROOT) == []


def test_every_common_call_skips_the_runtime_validation():
    # The check above stands in for it; a call left validating costs a worker per host and says nothing new.
    calls = [(str(path.relative_to(ROOT)), call.get("rolespec_validate")) for path, _, call in specs.common_calls(ROOT)]
    assert len(calls) > 50
    assert [c for c in calls if c[1] is not False] == []


def test_a_misspelt_option_and_a_missing_one_are_named(tmp_path):
    root = _tree(
        tmp_path,
        """
- name: Nested in a block
  block:
    - name: Write the config
      ansible.builtin.import_role:
        name: _common
        tasks_from: config_apply
        rolespec_validate: false
      vars:
        _common_config_file: []
        _common_config_notify: Restart web
""",
    )
    problems = specs.check_common_calls(root)
    assert problems == [
        "roles/web/tasks/main.yml: Write the config: '_common_config_file' is not an option of _common/config_apply",
        "roles/web/tasks/main.yml: Write the config: _common/config_apply needs '_common_config_files'",
    ]


def test_an_unknown_entry_point_is_named(tmp_path):
    root = _tree(
        tmp_path,
        """
- name: Open ports
  ansible.builtin.include_role:
    name: _common
    tasks_from: firewal
""",
    )
    assert specs.check_common_calls(root) == [
        "roles/web/tasks/main.yml: Open ports: _common has no entry point 'firewal' in its argument specs"
    ]


def test_other_roles_and_other_variables_are_left_alone(tmp_path):
    root = _tree(
        tmp_path,
        """
- name: Another role
  ansible.builtin.include_role:
    name: web
  vars:
    _common_anything: 1
- name: A correct call with the caller's own variables
  ansible.builtin.include_role:
    name: _common
    tasks_from: restart_policy
  vars:
    _common_restart_units: [web]
    web_port: 80
""",
    )
    assert specs.check_common_calls(root) == []
