"""The layering rule of mop/ (mop/run/layers.py): no module imports from a layer above its own."""

from mop.run import layers


def test_no_module_imports_from_a_layer_above():
    modules = layers.package_imports()
    assert {"mop.core.io", "mop.models.loading", "mop.recover.job", "mop.prune.pruner"} <= modules.keys()
    broken = layers.upward_imports([i for found in modules.values() for i in found])
    assert broken == [], "\n".join(f"{i.module}:{i.line} imports {i.target}" for i in broken)


def test_a_planted_upward_import_is_found():
    """Relative and absolute spellings, at module level and inside a function."""
    source = ("from .io import UsageError\n"
              "from ..prune.steps import apply_step\n"
              "def f():\n"
              "    from mop.recover import recovery\n"
              "    import mop.models.loading\n")
    found = layers.imports_of(source, "mop.core.disk", is_package=False)
    assert [i.target for i in found] == ["mop.core.io", "mop.prune.steps", "mop.recover", "mop.models.loading"]
    assert [(i.line, i.target) for i in layers.upward_imports(found)] == [
        (2, "mop.prune.steps"), (4, "mop.recover"), (5, "mop.models.loading")]


def test_layers_of_names():
    names = ("mop.core.io", "mop.families.llama", "mop.prune", "mop.evaluate", "mop.run.cli", "mop.stray", "mop")
    assert [layers.layer_of(m) for m in names] == ["core", "families", "prune", "evaluate", "run", "top", "top"]


def test_every_module_is_in_a_layer_and_a_stray_one_is_found():
    modules = layers.package_imports()
    assert layers.unplaced(modules) == []
    assert layers.unplaced([*modules, "mop.stray"]) == ["mop.stray"]
    assert {layers.layer_of(m) for m in modules} == {*layers.LAYERS, layers.TOP}  # every layer holds modules


def test_the_command_prints_every_module_with_its_layer():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "mop.run.layers"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = dict(reversed(line.split()) for line in proc.stdout.splitlines())
    assert rows == {m: layers.layer_of(m) for m in layers.package_imports()}
    assert rows["mop.run.grid"] == "run" and rows["mop.plugins.llava.plugin"] == "plugins"


def test_the_readme_layout_lists_the_layers_in_order():
    """The README's Layout block names each layer's folder, lowest first, as mop.run.layers orders them."""
    import re

    from conftest import REPO

    block = re.search(r"^## Layout\n.*?^```\n(.*?)^```", (REPO / "README.md").read_text(), re.M | re.S)
    assert block, "README has no Layout block"
    folders = [line.split()[0] for line in block[1].splitlines() if line.strip()]
    assert [folder.split("/")[1] for folder in folders] == list(layers.LAYERS)
    assert all((layers.PACKAGE.parent / folder / "__init__.py").is_file() for folder in folders)
    subpackages = {p.parent.name for p in layers.PACKAGE.glob("*/__init__.py")}
    assert subpackages == set(layers.LAYERS)  # no folder of mop/ left out of the README's list
