"""One storage module (components/runtime/storage.py): a URI told from a local path one way, paths joined one way,
files and folders written whole; and no other module of components/ or pipeline/ telling, joining or renaming into
place in a way of its own (read with `ast`: nothing is imported)."""

import ast
import os
from pathlib import Path

import pytest

from components.runtime import storage

REPO = Path(__file__).resolve().parents[2]
HOME = REPO / "components" / "runtime" / "storage.py"
# Renames into place that are not a file or a folder written whole, each with its own reason.
OWN_RENAMES = {
    "components/release/pusher.py": "a model version fsync'ed before its rename, the stock Pusher's staging",
    "components/runtime/versioned_folders.py": "the next free version number, when a concurrent run took one",
    "components/tf_serving/request_log.py": "a log file written record by record, renamed once closed",
}


def test_a_uri_is_scheme_colon_slash_slash_and_anything_else_a_local_path():
    assert storage.is_uri("s3://bucket/root") and storage.is_uri("gs://b") and storage.is_uri("hdfs://x/y")
    assert not storage.is_uri("/tmp/s3://x") and not storage.is_uri("relative/path") and not storage.is_uri("")
    assert not storage.is_uri(Path("s3://bucket/root"))  # a Path has already made the URI a folder name, s3:/bucket
    assert (storage.scheme("S3://b/k"), storage.scheme("/local")) == ("s3", "")
    assert storage.join("s3://b/root", "a", "b.json") == "s3://b/root/a/b.json"
    assert storage.join(Path("/tmp/root"), "a") == os.path.join("/tmp/root", "a")


def test_a_file_is_written_whole_and_replaces_the_old_one(tmp_path):
    target = tmp_path / "new" / "summary.json"
    storage.write_file(target, "first")
    storage.write_file(str(target), b"second")
    assert target.read_text() == "second" and os.listdir(target.parent) == ["summary.json"]
    assert storage.read_text(target) == "second" and storage.read_bytes(tmp_path / "missing") is None
    assert storage.exists(target) and storage.is_dir(tmp_path) and not storage.is_dir(target)


def test_a_folder_is_published_whole_once_and_never_half(tmp_path):
    target = tmp_path / "datasets" / "d"
    with pytest.raises(RuntimeError):
        with storage.folder_written_whole(target) as staging:
            (staging / "half.csv").write_text("a")
            raise RuntimeError("stopped halfway")
    assert not target.exists() and os.listdir(target.parent) == []
    with storage.folder_written_whole(target) as staging:
        assert staging.parent == target.parent and staging.name.startswith(".")
        (staging / "data.csv").write_text("whole")
    with storage.folder_written_whole(target) as staging:  # published meanwhile by another process: that one stays
        (staging / "data.csv").write_text("second")
    assert (target / "data.csv").read_text() == "whole" and os.listdir(target.parent) == ["d"]
    assert oct(target.stat().st_mode & 0o777) == "0o755"


def test_copy_tree_copies_every_file(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c.txt").write_text("c")
    (tmp_path / "a" / "d.txt").write_text("d")
    storage.copy_tree(str(tmp_path / "a"), str(tmp_path / "copy"))
    assert (tmp_path / "copy" / "b" / "c.txt").read_text() == "c" and (tmp_path / "copy" / "d.txt").read_text() == "d"


def _ways_of_its_own(path: Path):
    """(line, what) of each place `path` tells a URI from a path, joins paths or renames into place on its own."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in ("is_local", "is_uri", "join"):
            yield node.lineno, f"defines {node.name}()"
        elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) and any(
                isinstance(c, ast.Constant) and c.value == "://" for c in (node.left, *node.comparators)):
            yield node.lineno, 'tests "://" in a path'
        elif isinstance(node, ast.Attribute) and node.attr == "match" and isinstance(node.value, ast.Name) \
                and node.value.id == "URI":
            yield node.lineno, "matches URI"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("replace", "rename") and isinstance(node.func.value, ast.Name) \
                and node.func.value.id == "os":
            yield node.lineno, f"os.{node.func.attr}()"


def test_no_module_has_a_way_of_its_own():
    found = []
    for package in ("components", "pipeline"):
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if path == HOME:
                continue
            for line, what in _ways_of_its_own(path):
                if what.startswith("os.") and relative in OWN_RENAMES:
                    continue
                found.append(f"{relative}:{line} {what}")
    assert not found, "use components/runtime/storage.py instead: " + "; ".join(found)


def test_the_check_finds_each_way(tmp_path):
    """The walker itself, on a made-up module with each of the four ways."""
    module = tmp_path / "m.py"
    module.write_text('import os\nURI = None\ndef join(a, b):\n    return a\n'
                      'def f(p):\n    if "://" in p or URI.match(p):\n        os.replace(p, p)\n')
    assert sorted(_ways_of_its_own(module)) == [
        (3, "defines join()"), (6, "matches URI"), (6, 'tests "://" in a path'), (7, "os.replace()")]
