"""The declared dependencies match what the code imports.

``pip install .`` must give everything ``course_lib`` imports (the models, and the
``course-release`` / ``course-grade`` commands), so every third-party module imported by a
``course_lib`` module, at module level or inside a function, must come from a distribution
in ``[project] dependencies``. Conversely every declared core dependency must be imported by
``course_lib`` or a chapter notebook, unless ``NOT_IMPORTED`` says why it is needed anyway.
The imports are read with ``ast`` (nothing is imported), the dependencies with ``tomllib``.
"""

import ast
import re
import sys
from pathlib import Path

import nbformat
import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "course_lib"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# Top-level import name -> the distribution that installs it (PEP 503-normalized name).
# A third-party import missing here fails the test: add it, and declare the distribution.
DISTRIBUTION = {
    "keras": "keras",
    "tensorflow": "tensorflow",
    "tensorflow_probability": "tensorflow-probability",
    "tf_keras": "tf-keras",
    "numpy": "numpy",
    "matplotlib": "matplotlib",
    "sklearn": "scikit-learn",
    "nbformat": "nbformat",
    "nbclient": "nbclient",
    "jupyter_client": "jupyter-client",
    "ipykernel": "ipykernel",
    "IPython": "ipython",
    "scipy": "scipy",
    "psutil": "psutil",
    "jupyter_core": "jupyter-core",
}

# A notebook runs in a Jupyter kernel: IPython comes with it (ipykernel depends on it).
PROVIDED_BY_THE_KERNEL = {"IPython"}

# Declared core dependencies that no course_lib module or notebook imports, and why.
NOT_IMPORTED = {
    "tf-keras": "with Keras 3 installed, TFP's internals import tf_keras (its "
                "python/internal/tf_keras.py) as soon as tfp.distributions loads, so TFP, "
                "and notebook 04, need it",
    "ipykernel": "the Jupyter kernel that course-grade starts (nbclient, kernel_name="
                 "'python3') to run a submission; nothing imports it",
}


def normalize(name):
    """PEP 503: lower case, runs of '-', '_' and '.' become one '-'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement):
    """'tensorflow-probability[tf]>=0.24,<0.27' -> 'tensorflow-probability'."""
    return normalize(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1))


def pyproject():
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def core_dependencies(project=None):
    project = pyproject()["project"] if project is None else project
    return {requirement_name(r) for r in project["dependencies"]}


def top_level_imports(source):
    """Top-level names of the absolute imports anywhere in ``source`` (functions too)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def third_party(names):
    return {n for n in names if n not in sys.stdlib_module_names and n != "course_lib"}


def package_imports():
    """{module path: third-party top-level imports} for every course_lib module."""
    return {path.relative_to(ROOT).as_posix(): third_party(top_level_imports(path.read_text()))
            for path in sorted(PACKAGE.rglob("*.py"))}


def notebook_imports():
    """{notebook: third-party top-level imports of its code cells} (magics and shell lines
    dropped)."""
    found = {}
    for path in NOTEBOOKS:
        names = set()
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                code = "\n".join(line for line in cell.source.splitlines()
                                 if not line.lstrip().startswith(("%", "!")))
                names |= top_level_imports(code)
        found[path.name] = third_party(names)
    return found


def undeclared(imports_by_file, declared, provided=frozenset()):
    """{file: sorted [(module, distribution)]} whose distribution is not ``declared``."""
    missing = {}
    for where, names in imports_by_file.items():
        unknown = sorted(names - DISTRIBUTION.keys() - provided)
        assert not unknown, (f"{where} imports {unknown}: add them to DISTRIBUTION in "
                             "tests/test_dependencies.py and declare their distributions")
        bad = sorted((n, DISTRIBUTION[n]) for n in names - provided
                     if normalize(DISTRIBUTION[n]) not in declared)
        if bad:
            missing[where] = bad
    return missing


def unused(declared, imports_by_file):
    imported = {normalize(DISTRIBUTION[n]) for names in imports_by_file.values()
                for n in names if n in DISTRIBUTION}
    return sorted(declared - imported - NOT_IMPORTED.keys())


def test_the_scan_sees_imports_at_module_level_and_inside_functions():
    imports = package_imports()
    assert len(imports) > 20
    assert "nbformat" in imports["course_lib/course/release.py"]            # module level
    assert "IPython" in imports["course_lib/course/grading.py"]             # in a function
    assert "numpy" in imports["course_lib/sampling.py"]                     # functions
    assert "tensorflow_probability" in notebook_imports()["04_vae.ipynb"]


def test_every_third_party_import_of_course_lib_is_a_core_dependency():
    """After a plain ``pip install .`` importing any course_lib module (the course-release
    and course-grade commands included) finds what it needs."""
    assert undeclared(package_imports(), core_dependencies()) == {}


def test_every_notebook_import_is_a_core_dependency():
    assert undeclared(notebook_imports(), core_dependencies(), PROVIDED_BY_THE_KERNEL) == {}


def test_every_core_dependency_is_imported_or_explained():
    imports = {**package_imports(), **notebook_imports()}
    assert unused(core_dependencies(), imports) == []
    assert NOT_IMPORTED.keys() <= core_dependencies()     # no stale explanations


def test_the_entry_points_exist_and_are_covered():
    scripts = pyproject()["project"]["scripts"]
    for name in ("course-release", "course-grade"):
        module, function = scripts[name].split(":")
        path = ROOT / (module.replace(".", "/") + ".py")
        tree = ast.parse(path.read_text())
        assert function in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_the_checks_catch_a_missing_and_an_unused_dependency():
    """The test has teeth: with nbformat dropped from the declared dependencies the import
    check names it; with an extra package declared the converse check names it."""
    declared = core_dependencies()
    missing = undeclared(package_imports(), declared - {"nbformat"})
    assert ("nbformat", "nbformat") in missing["course_lib/course/release.py"]
    project = dict(pyproject()["project"])
    project["dependencies"] = [*project["dependencies"], "tqdm>=4.60"]
    imports = {**package_imports(), **notebook_imports()}
    assert unused(core_dependencies(project), imports) == ["tqdm"]


def test_test_only_imports_are_in_the_dev_extra():
    """What the tests import beyond the core dependencies comes with ``.[dev]``."""
    dev = {requirement_name(r) for r in pyproject()["project"]["optional-dependencies"]["dev"]}
    declared = core_dependencies() | dev
    tests = {path.relative_to(ROOT).as_posix(): third_party(top_level_imports(path.read_text()))
             - {"pytest", "oracles", "refusals", "replicas", "model_checks", "conftest", "tomli"}
             for path in sorted((ROOT / "tests").rglob("*.py"))}
    assert undeclared(tests, declared) == {}
