"""mcuc's modules import each other without circles, and no top-level folder reaches
into another folder's private (`_name`) modules, beyond the explicit lists below.

scripts/import_cycles.py counts every import, inside functions and TYPE_CHECKING
blocks too (run it for the import statements behind each entry).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tests.support.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "import_cycles.py"

# The import circles still to break, each as its sorted modules. This list must only
# shrink, to empty: a new circle is broken by moving the code both sides need into the
# module that should own it, not added here.
ALLOWED_CYCLES: list[list[str]] = []

# (importer, private module) pairs across top-level folders (ir, passes, backends,
# frontend, compiler). This list must only shrink: what another folder needs belongs in
# a public module.
ALLOWED_PRIVATE_IMPORTS: list[tuple[str, str]] = []


def _import_cycles():
    """scripts/import_cycles.py as a module (scripts/ is no package)."""
    if "import_cycles" not in sys.modules:
        spec = importlib.util.spec_from_file_location("import_cycles", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["import_cycles"] = module  # its dataclass resolves annotations there
        spec.loader.exec_module(module)
    return sys.modules["import_cycles"]


def test_import_circles_are_only_the_known_ones():
    assert _import_cycles().find_cycles() == ALLOWED_CYCLES


def test_private_modules_are_imported_across_folders_only_where_known():
    assert _import_cycles().find_private_imports() == ALLOWED_PRIVATE_IMPORTS


def test_the_script_finds_circles_hidden_in_functions_and_resolves_submodules(tmp_path):
    """A circle closed by an import inside a function counts, and so does a module
    importing itself; `from . import name` naming a submodule imports that submodule;
    a private module imported from another top-level folder is reported."""
    (tmp_path / "setup.cfg").write_text(
        "[options]\npackage_dir =\n    mcuc = compiler\n    mcuc.frontend = frontend\n"
        "    mcuc.ir = ir\n    mcuc.passes = passes\n    mcuc.backends = backends\n")
    for folder in ("compiler", "frontend", "ir", "passes", "backends"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "ir" / "a.py").write_text("def f():\n    from .b import g\n")
    (tmp_path / "ir" / "b.py").write_text("from . import a\n")
    (tmp_path / "ir" / "c.py").write_text("from mcuc.ir import c\n")
    (tmp_path / "ir" / "_hidden.py").write_text("")
    (tmp_path / "passes" / "p.py").write_text("from mcuc.ir import _hidden\nfrom ..ir import a\n")
    cycles = _import_cycles()
    assert cycles.find_cycles(tmp_path) == [["mcuc.ir.a", "mcuc.ir.b"], ["mcuc.ir.c"]]
    assert cycles.find_private_imports(tmp_path) == [("mcuc.passes.p", "mcuc.ir._hidden")]
    assert cycles.main(tmp_path) == 1
