"""The layering rule of mop/ (mop/layers.py): no module imports from a layer above its own."""

from mop import layers


def test_no_module_imports_from_a_layer_above():
    modules = layers.package_imports()
    assert {"mop.core.io", "mop.models.loading", "mop.recover.recovery", "mop.prune.pruner"} <= modules.keys()
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
    names = ("mop.core.io", "mop.families.llama", "mop.prune", "mop.evaluate", "mop.cli", "mop")
    assert [layers.layer_of(m) for m in names] == ["core", "families", "prune", "evaluate", "top", "top"]
