"""Import a repository file as a module, for the unit tests.

It lives outside ``conftest.py``: ``make test`` collects ``tests/unit`` and ``tests/migrations`` in one pytest
run, and both have a ``conftest.py``, so ``from conftest import ...`` reaches whichever was imported last.
"""

import importlib.util
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
