"""The source tree's imports run downward only: every package under components/ and pipeline/ imports only its own
package and the layers below it, nothing under components/ imports pipeline/, and no module imports itself back
through a circle. Read with the standard library's `ast` (nothing is imported), so the rule holds for imports
inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("components", "pipeline")

# Lowest first. A module may import modules of its own layer and of the layers before it. Within one layer the
# module-level cycle check below still applies.
LAYERS = (
    ("components.features", "components.tasks", "components.runtime"),
    ("components.model",),
    ("components.settings",),
    ("components.ingestion", "components.tf_serving"),
    ("components.baselines",),
    ("components.module_files",),
    ("components.validation",),
    ("components.release",),
    ("pipeline.data",),
    ("pipeline.dag",),
    ("pipeline.planning",),
    ("pipeline.cli",),
    ("pipeline.serving", "pipeline.kubeflow", "pipeline.local"),
    ("pipeline.run_local", "pipeline.run_kubeflow", "pipeline.serve", "pipeline.train_job"),  # the entry points
)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules():
    return {module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def imported(path: Path, known) -> set:
    """The project's modules `path` imports (a `from package import name` counts as the module package.name when
    that is a module, else as the package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                     for a in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] in PACKAGES)
    return found


def named_modules(path: Path):
    """(line, module) of every project module `path` imports, as written."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.split(".")[0] in PACKAGES)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] in PACKAGES:
            yield node.lineno, node.module


def layer_of(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return -1


MODULES = source_modules()
GRAPH = {name: imported(path, MODULES) for name, path in MODULES.items()}


def test_every_module_has_a_layer():
    packages = {"components", "pipeline"}  # the top-level __init__ files hold only a docstring
    missing = sorted(m for m in MODULES if layer_of(m) < 0 and m not in packages)
    assert not missing, f"modules in no layer of {__file__}: {missing}"


def test_every_package_says_what_it_holds():
    for path in MODULES.values():
        if path.name == "__init__.py":
            doc = ast.get_docstring(ast.parse(path.read_text()))
            assert doc and len(doc) > 80, f"{path.relative_to(REPO)} needs a docstring saying what lives there"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_downward(module):
    upward = sorted(dep for dep in GRAPH[module] if dep in MODULES and layer_of(dep) > layer_of(module))
    assert not upward, f"{module} imports upward: {upward}"
    if module.startswith("components"):
        assert not [d for d in GRAPH[module] if d.startswith("pipeline")], f"{module} imports pipeline/"


def test_every_import_names_a_module_that_exists():
    """An import left behind by a move (often inside a function, so only the run that reaches it would fail) names a
    module that is no longer there. Tests, benchmarks and scripts import the project too."""
    folders = (*PACKAGES, "tests", "benchmarks", "scripts")
    files = [p for folder in folders for p in sorted((REPO / folder).rglob("*.py"))]
    stale = [f"{p.relative_to(REPO)}:{line} imports {name}" for p in files for line, name in named_modules(p)
             if name not in MODULES]
    assert not stale, "imports of modules that do not exist: " + "; ".join(stale)


def find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if dep not in graph or dep == node:
                continue
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle():
    # A package's __init__ importing nothing, an edge to a package means its __init__; those are leaves here.
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checks_catch_what_they_should():
    """The walker itself: an upward edge and a circle in a made-up graph are found."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer_of("components.model.bert") < layer_of("components.module_files.trainer") < layer_of("pipeline.dag.x")


# Imports kept for what importing them does, not for a name: nothing else may be imported only to be handed on.
SIDE_EFFECT_IMPORTS = {
    "components.runtime.keras2": "Keras 2 and its AutoGraph rule before TensorFlow loads",
    "tensorflow_text": "registers the WordPiece ops the transform graph uses",
    "tensorflow_io": "registers TensorFlow's s3:// file system",
}


def handed_on(path: Path):
    """(line, name) of each name `path` imports only to hand it on: an import marked `noqa: F401` that is not one of
    SIDE_EFFECT_IMPORTS, or an imported name listed in `__all__`."""
    source = path.read_text()
    tree = ast.parse(source, str(path))
    lines = source.splitlines()
    imported_names = {}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            end = lines[node.lineno - 1:node.end_lineno]
            marked = any("noqa: F401" in line for line in end)
            module = node.module if isinstance(node, ast.ImportFrom) else None
            for alias in node.names:
                imported_names[alias.asname or alias.name.split(".")[0]] = node.lineno
                names = {alias.name} if module is None else {module, f"{module}.{alias.name}"}
                if marked and not names & set(SIDE_EFFECT_IMPORTS):
                    yield node.lineno, alias.asname or alias.name
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            for element in getattr(node.value, "elts", []):
                if isinstance(element, ast.Constant) and element.value in imported_names:
                    yield node.lineno, element.value


@pytest.mark.parametrize("module", sorted(MODULES))
def test_nothing_is_imported_only_to_be_handed_on(module):
    """A name lives in one module and is imported from there: a re-export keeps an old home alive, and readers then
    find a name in two places (issue 45)."""
    found = list(handed_on(MODULES[module]))
    assert not found, f"{module} hands on names it imports: {found}"


def test_the_hand_on_check_finds_both_kinds(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("from a import b  # noqa: F401\nimport tensorflow_text  # noqa: F401\nfrom c import d\n"
                    "__all__ = ['d', 'e']\ne = 1\n")
    assert sorted(handed_on(path)) == [(1, "b"), (4, "d")]


# docs/layout.md: the page a newcomer reads to find a file, held against the tree.
LAYOUT = REPO / "docs" / "layout.md"


def layout_layers(text: str):
    """The numbered list under '## Layers': each item's backticked module names, in order."""
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    items = [line for line in section.splitlines() if line[:1].isdigit() and ". " in line]
    return [tuple(name for name in line.split("`")[1::2]) for line in items]


def test_the_layout_page_lists_the_layers_this_test_checks():
    assert layout_layers(LAYOUT.read_text()) == [tuple(layer) for layer in LAYERS]


def test_the_layout_page_names_every_module_and_nothing_that_is_gone():
    text = LAYOUT.read_text()
    named = {token for token in text.split("`")[1::2] if token.startswith(PACKAGES) and "/" in token}
    files = {p.relative_to(REPO).as_posix() for pkg in PACKAGES for p in (REPO / pkg).rglob("*")
             if p.is_file() and p.suffix in (".py", ".json", ".html") and p.name != "__init__.py"
             and "__pycache__" not in p.parts}
    missing = sorted(files - named)
    assert not missing, f"{LAYOUT.relative_to(REPO)} does not name: {missing}"
    gone = sorted(path for path in named if not (REPO / path.split(" ")[0]).exists())
    assert not gone, f"{LAYOUT.relative_to(REPO)} names what is not there: {gone}"
