"""The layers of the package and the rule between them: a module imports only from its own layer
and the layers below it.

    python -m mop.run.layers          # every module with its layer; exit 1 on an upward import

Read from the source (the `import` statements, parsed, not executed), so the check costs no
torch import and sees imports inside functions too. Every module lives in a layer: one placed
directly in mop/ (outside every layer) is reported too. A plugin is imported by name from the
registry (mop.families.WRAPPER_PLUGINS, importlib), never by an import statement below it.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
# Lowest first: a layer may import its own and earlier ones.
LAYERS = ("core", "families", "models", "recover", "prune", "evaluate", "plugins", "deploy", "run")
TOP = "top"  # the package itself; any other module here is misplaced


@dataclass(frozen=True)
class Import:
    """One `import` of a mop module: who, from which line, what."""

    module: str
    line: int
    target: str


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    """`mop.prune.steps` -> 'prune'; a module directly under mop/ (or mop itself) -> the top."""
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in LAYERS else TOP


def rank(layer: str) -> int:
    return LAYERS.index(layer) if layer in LAYERS else len(LAYERS)


def imports_of(source: str, module: str, is_package: bool) -> list[Import]:
    """Every mop module `source` imports, relative imports resolved against `module`."""
    found = []
    base = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(module, node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "mop"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "mop":
                continue
            if target == "mop" or node.module is None:  # `from mop import x`, `from . import x`: modules
                found += [Import(module, node.lineno, f"{target}.{a.name}") for a in node.names]
            else:
                found.append(Import(module, node.lineno, target))
    return found


def upward_imports(imports: list[Import]) -> list[Import]:
    """The imports that break the rule: into a layer above the importing module's."""
    return [i for i in imports if rank(layer_of(i.target)) > rank(layer_of(i.module))]


def unplaced(modules) -> list[str]:
    """Modules outside every layer (a file put directly in mop/): each belongs in one."""
    return [name for name in modules if name != PACKAGE.name and layer_of(name) == TOP]


def package_imports(package: Path = PACKAGE) -> dict[str, list[Import]]:
    result = {}
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts or not (path.parent / "__init__.py").exists():
            continue  # data folders (tasks/) hold scripts, not package modules
        name = module_name(path, package)
        result[name] = imports_of(path.read_text(), name, path.name == "__init__.py")
    return result


def main() -> int:
    modules = package_imports()
    for name in modules:
        print(f"{layer_of(name):9} {name}")
    broken = upward_imports([i for found in modules.values() for i in found])
    for i in broken:
        print(f"upward import: {i.module} (layer {layer_of(i.module)}) line {i.line} imports {i.target} "
              f"(layer {layer_of(i.target)})", file=sys.stderr)
    for name in unplaced(modules):
        print(f"outside every layer: {name} (move it into one of {', '.join(LAYERS)})", file=sys.stderr)
    return 1 if broken or unplaced(modules) else 0


if __name__ == "__main__":
    sys.exit(main())
