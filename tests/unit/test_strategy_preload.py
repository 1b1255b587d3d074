"""plugins/strategy/mitogen_linear.py: the plugins a worker needs are loaded in the parent, before the forks."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[2]

# A forked child renders what a task renders (one of the collection's filters, builtin filters and a test) and reports
# the plugin modules it had to import itself. Run in a fresh interpreter: the loaders' state is per process.
CHILD = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, "plugins/strategy")
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader
    from ansible.template import Templar, trust_as_template

    init_plugin_loader()
    import mitogen_linear

    if sys.argv[1] == "preload":
        mitogen_linear.load_plugins_before_forking()
        mitogen_linear.load_plugins_before_forking()  # a second play: nothing more to do
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        before = set(sys.modules)
        rendered = Templar(loader=DataLoader(), variables={"v": [2, 1, 2]}).template(trust_as_template(
            "{{ (v | unique | sort | to_json) ~ ('a b' | url_component) ~ (v is iterable) }}"
        ))
        imported = sorted(m for m in set(sys.modules) - before if m.startswith("ansible.plugins."))
        os.write(write, (rendered + "\\n" + " ".join(imported)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    os.close(write)
    print(os.read(read, 65536).decode())
    """
)


def render_in_a_worker(mode: str) -> tuple[str, list[str]]:
    """Run CHILD with or without the preload.

    :param mode: ``preload`` to call load_plugins_before_forking in the parent before the fork, else anything.
    :returns: what the child rendered, and the ``ansible.plugins.*`` modules it imported itself.
    :raises subprocess.CalledProcessError: when the interpreter fails.
    """
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    out = (
        subprocess.run(
            [sys.executable, "-c", CHILD, mode], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        )
        .stdout.strip()
        .splitlines()
    )
    return out[0], (out[1].split() if len(out) > 1 else [])


def test_a_worker_forked_after_the_preload_imports_no_plugin_and_renders_the_same():
    rendered, imported = render_in_a_worker("preload")
    assert rendered == "[1, 2]a%20bTrue"
    assert imported == []


def test_without_the_preload_each_worker_imports_the_filter_files_itself():
    rendered, imported = render_in_a_worker("none")
    assert rendered == "[1, 2]a%20bTrue"
    # The collection's own filter files (filter_plugins/) and ansible's core filters, in every worker.
    assert any(m.startswith("ansible.plugins.filter.syntax") for m in imported), imported
    assert any(m.startswith("ansible.plugins.filter.core") for m in imported), imported
