"""Import a repository file as a module, for the unit tests.

It lives outside ``conftest.py``: ``make test`` collects ``tests/unit`` and ``tests/migrations`` in one pytest
run, and both have a ``conftest.py``, so ``from conftest import ...`` reaches whichever was imported last.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_file(relative: str, name: str) -> ModuleType:
    """Import the Python file at ``relative`` (a path from the repository root) as module ``name``.

    Raises ``FileNotFoundError`` when the file does not exist and whatever the module raises at import.
    """
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_local_playbook(
    tmp_path: Path, playbook: Path, roles_path: Path, *options: str
) -> "subprocess.CompletedProcess[str]":
    """Run ``playbook`` with ansible-playbook on two local hosts (h1, h2) and the default callback's YAML results.

    :param tmp_path: a directory for the inventory file (``hosts``).
    :param playbook: the playbook file to run.
    :param roles_path: the directory Ansible finds roles in.
    :param options: more ansible-playbook options, e.g. ``--check``.
    :returns: the finished process, stdout and stderr as text; the caller asserts on its return code.
    :raises subprocess.TimeoutExpired: after 300 s.
    """
    host = f"ansible_connection=local ansible_python_interpreter={sys.executable}"
    (tmp_path / "hosts").write_text(f"h1 {host}\nh2 {host}\n")
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=str(roles_path),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_STDOUT_CALLBACK="default",
        ANSIBLE_CALLBACK_RESULT_FORMAT="yaml",
    )
    ansible = Path(sys.executable).with_name("ansible-playbook")
    return subprocess.run(
        [str(ansible), *options, "-i", str(tmp_path / "hosts"), str(playbook)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
