"""The package's layering holds: every module imports, and no import goes the wrong way.

Layers, bottom to top (README, package docstring):

    foundation   checks, sampling
    shared       data, training, plotting,           (foundation)
                 kernels, langevin
    families     boltzmann, variational, ...,        (foundation, shared; never each other)
                 moment_matching, denoising, energy,
                 translation
    evaluation   evaluation                          (foundation, shared; models only through
                                                      their named methods, never an import)
    tooling      course                              (anything)

The imports are read from the source (``ast``), module level and inside functions alike, so
an import moved into a function to dodge a cycle is caught too.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import course_lib

PACKAGE_DIR = Path(course_lib.__file__).resolve().parent
FOUNDATION = {"checks", "sampling"}
SHARED = {"data", "training", "plotting", "kernels", "langevin"}
FAMILIES = {"boltzmann", "variational", "adversarial", "flows", "moment_matching", "denoising",
            "energy", "translation"}
EVALUATION = {"evaluation"}
TOOLING = {"course"}
ALLOWED = {  # layer -> the top-level parts of course_lib its modules may import
    "foundation": FOUNDATION,
    "shared": FOUNDATION | SHARED,
    "evaluation": FOUNDATION | SHARED | EVALUATION,
    "tooling": FOUNDATION | SHARED | FAMILIES | EVALUATION | TOOLING,
}


def layer_of(part):
    for name, parts in (("foundation", FOUNDATION), ("shared", SHARED), ("family", FAMILIES),
                        ("evaluation", EVALUATION), ("tooling", TOOLING)):
        if part in parts:
            return name
    raise AssertionError(f"course_lib.{part} belongs to no layer: add it to tests/test_layers.py "
                         "and to the layout in the package docstring.")


def modules():
    """(dotted name, path) of every module of course_lib."""
    found = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.append((".".join(parts), path))
    return found


def course_lib_imports(path, module_name):
    """(imported course_lib module, line, inside a function?) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name if path.name == "__init__.py" else module_name.rpartition(".")[0]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                       ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, nested) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[:len(base) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                for alias in child.names:  # `from course_lib import sampling` imports a module
                    full = f"{target}.{alias.name}"
                    found.append((full if _find_spec_safe(full) else target,
                                  child.lineno, nested))
            visit(child, nested)

    visit(tree, False)
    return [(name, line, nested) for name, line, nested in found
            if name == "course_lib" or name.startswith("course_lib.")]


def _find_spec_safe(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


MODULES = modules()


@pytest.mark.parametrize("name", [name for name, _ in MODULES])
def test_every_module_imports(name):
    importlib.import_module(name)


@pytest.mark.parametrize("name,path", MODULES, ids=[name for name, _ in MODULES])
def test_no_import_goes_the_wrong_way(name, path):
    parts = name.split(".")
    problems = []
    for target, line, nested in course_lib_imports(path, name):
        where = f"{path.relative_to(PACKAGE_DIR.parent)}:{line} imports {target}"
        if nested:
            problems.append(f"{where} inside a function (import at module level)")
        target_parts = target.split(".")
        if len(parts) == 1:  # course_lib/__init__.py itself imports nothing of the package
            problems.append(f"{where}: the package root imports none of its modules")
            continue
        if len(target_parts) == 1:
            problems.append(f"{where}: import the module you need, not the package root")
            continue
        own, other = parts[1], target_parts[1]
        layer = layer_of(own)
        layer_of(other)  # every target belongs to a layer
        if layer == "family":
            if other in FAMILIES and other != own:
                problems.append(f"{where}: model families never import each other")
            elif other not in FOUNDATION | SHARED | {own}:
                problems.append(f"{where}: a model family imports only the shared machinery")
        elif other not in ALLOWED[layer]:
            problems.append(f"{where}: the {layer} layer may import only "
                            f"{sorted(ALLOWED[layer])}")
    assert not problems, "\n".join(problems)


def test_evaluation_uses_named_methods_not_hasattr():
    for path in sorted((PACKAGE_DIR / "evaluation").glob("*.py")):
        tree = ast.parse(path.read_text())
        calls = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "getattr")]
        assert not calls, f"{path.name} lines {calls}: call a named method of the model instead"


def test_the_checker_catches_a_wrong_import(tmp_path):
    """The rule can fail: a model module importing evaluation is reported."""
    fake = PACKAGE_DIR / "boltzmann" / "rbm.py"
    bad = tmp_path / "rbm.py"
    bad.write_text(fake.read_text() + "\nfrom course_lib.evaluation import ais\n"
                   "def f():\n    from course_lib.variational import vae\n")
    found = course_lib_imports(bad, "course_lib.boltzmann.rbm")
    assert ("course_lib.evaluation.ais", found[-2][1], False) in found
    assert found[-1][0] == "course_lib.variational.vae" and found[-1][2]


def test_model_families_load_without_evaluation_or_tooling():
    code = ("import sys, course_lib.boltzmann, course_lib.variational, course_lib.training; "
            "bad = sorted(m for m in sys.modules if m.startswith(('course_lib.evaluation', "
            "'course_lib.course'))); print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]


@pytest.mark.parametrize("backend", ["jax", "torch", "numpy"])
def test_another_backend_is_refused_at_import(backend):
    env = {"KERAS_BACKEND": backend, "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(PACKAGE_DIR.parent)}
    result = subprocess.run([sys.executable, "-c", "import course_lib.boltzmann"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: course_lib needs Keras' TensorFlow backend"), last
    assert f"'{backend}'" in last and "KERAS_BACKEND=tensorflow" in last
