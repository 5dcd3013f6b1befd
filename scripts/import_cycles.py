#!/usr/bin/env python3
"""Import circles and private cross-folder imports among mcuc's own modules.

    .venv/bin/python scripts/import_cycles.py     # exit code 1 when there is a circle

Reads every .py under the source folders (compiler/, frontend/, ir/, passes/,
backends/), names each file by the `mcuc` module it is installed as (setup.cfg's
package_dir), and collects every import of an mcuc module, at module level and inside
functions and `if TYPE_CHECKING:` blocks alike: an import a function makes on first call
is still a dependency, and a circle hidden that way is still a circle. Relative imports
are resolved; `from X import name` where X.name is a module counts as importing X.name.
Imports by computed name (importlib.import_module(f"...")) are invisible to it.

It prints
  - each circle: a strongly connected component of more than one module (or a module
    that imports itself), with the import statements that close it;
  - each private module (one whose last name part starts with `_`, e.g.
    mcuc.ir.ops.ort_float) imported from another top-level folder: the underscore
    says "internal to this folder", so another folder depending on it is a layering
    violation even when no circle results.

tests/compiler/test_import_cycles.py holds both lists to an explicit expected list.
"""
from __future__ import annotations

import ast
import configparser
import sys
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("compiler", "frontend", "ir", "passes", "backends")


@dataclass(frozen=True)
class Import:
    importer: str   # module name, e.g. "mcuc.ir.ops.conv2d"
    imported: str   # module name of an mcuc module
    path: str       # file of the import statement, relative to the repository root
    line: int


def folder_packages(root: Path = REPO_ROOT) -> dict[str, str]:
    """Folder -> the package it is installed as, from setup.cfg's package_dir (e.g.
    "compiler" -> "mcuc", "ir" -> "mcuc.ir"). Besides the source folders this maps
    data packages such as runtime_c, so `from mcuc import runtime_c` resolves to
    mcuc.runtime_c rather than to mcuc itself."""
    config = configparser.ConfigParser()
    config.read(root / "setup.cfg")
    mapping: dict[str, str] = {}
    for line in config["options"]["package_dir"].strip().splitlines():
        package, _, folder = (part.strip() for part in line.partition("="))
        mapping[folder] = package
    missing = [f for f in SOURCE_FOLDERS if f not in mapping]
    if missing:
        raise SystemExit(f"setup.cfg's package_dir does not map {', '.join(missing)}")
    return mapping


def module_files(root: Path = REPO_ROOT) -> dict[str, Path]:
    """mcuc module name -> its file, for every .py under the folders setup.cfg maps."""
    modules: dict[str, Path] = {}
    for folder, package in folder_packages(root).items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name of `from <level dots><name> import ...` written in `module`."""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of `name` that is an mcuc module (None outside mcuc)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def collect_imports(root: Path = REPO_ROOT) -> list[Import]:
    """Every import of an mcuc module by an mcuc module, wherever it is written."""
    modules = module_files(root)
    found: list[Import] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        rel = str(path.relative_to(root))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = (_resolve_relative(module, is_package, node.level, node.module)
                          if node.level else node.module or "")
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    targets.append(submodule if submodule in modules else source)
            for target in targets:
                imported = _known(target, modules)
                if imported is not None:
                    found.append(Import(module, imported, rel, node.lineno))
    return sorted(set(found), key=lambda i: (i.importer, i.imported, i.line))


def _graph(imports: list[Import]) -> nx.DiGraph:
    graph = nx.DiGraph()
    for imp in imports:
        if not graph.has_edge(imp.importer, imp.imported):
            graph.add_edge(imp.importer, imp.imported, where=f"{imp.path}:{imp.line}")
    return graph


def _circles(graph: nx.DiGraph) -> list[list[str]]:
    self_importers = {module for module, _ in nx.selfloop_edges(graph)}
    return sorted(sorted(component) for component in nx.strongly_connected_components(graph)
                  if len(component) > 1 or component & self_importers)


def find_cycles(root: Path = REPO_ROOT) -> list[list[str]]:
    """Each import circle as the sorted list of its modules, the list sorted."""
    return _circles(_graph(collect_imports(root)))


def is_private(module: str) -> bool:
    """A module whose last name part starts with `_` (dunder names such as __main__ aside)."""
    last = module.rsplit(".", 1)[-1]
    return last.startswith("_") and not last.startswith("__")


def _private_cross_folder(imports: list[Import], root: Path) -> list[Import]:
    modules = module_files(root)

    def folder(module: str) -> str:
        return modules[module].relative_to(root).parts[0]

    return [imp for imp in imports
            if is_private(imp.imported) and folder(imp.importer) != folder(imp.imported)]


def find_private_imports(root: Path = REPO_ROOT) -> list[tuple[str, str]]:
    """(importer, private module) for each private module imported from another
    top-level folder, sorted, each pair once."""
    return sorted({(imp.importer, imp.imported)
                   for imp in _private_cross_folder(collect_imports(root), root)})


def main(root: Path = REPO_ROOT) -> int:
    imports = collect_imports(root)
    graph = _graph(imports)
    circles = _circles(graph)
    print(f"import circles: {len(circles)}")
    for number, circle in enumerate(circles, 1):
        print(f"  circle {number} ({len(circle)} modules): {', '.join(circle)}")
        for importer, imported, where in sorted(graph.subgraph(circle).edges(data="where")):
            print(f"    {importer} -> {imported}  ({where})")
    private = _private_cross_folder(imports, root)
    pairs = sorted({(imp.importer, imp.imported) for imp in private})
    print(f"private modules imported from another top-level folder: {len(pairs)}")
    for pair in pairs:
        lines = ", ".join(f"{imp.path}:{imp.line}" for imp in private
                          if (imp.importer, imp.imported) == pair)
        print(f"  {pair[0]} -> {pair[1]}  ({lines})")
    return 1 if circles else 0


if __name__ == "__main__":
    sys.exit(main())
