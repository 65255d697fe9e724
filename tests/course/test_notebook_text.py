"""The chapter notebooks' text: equation labels render, and every cited label exists.

A ``\\tag`` only renders inside display math (``$$ ... $$``); written inline it shows nothing.
A citation such as "Eq. 4.9", "Eqs. 1.13–1.15" or "(4.11)" in a chapter's markdown or code
comments must name a label that the same chapter's markdown defines (a tag may cover a range,
``\\tag{1.8–1.9}``). Code identifiers such as ``stop_gradient`` do not belong inside math.
"""

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
TAG = re.compile(r"\\tag\{([^}]*)\}")
RANGE = re.compile(r"^(\d+)\.(\d+)(?:\s*[–-]\s*(\d+)\.(\d+))?$")
CITE = re.compile(r"\bEqs?\.\s*\(?(\d+\.\d+)\)?(?:\s*(?:[–-]|to|and|,)\s*\(?(\d+\.\d+)\)?)?")
PAREN = re.compile(r"(?<![\w.])\((\d+)\.(\d+)\)")


def chapter_of(path):
    return int(path.name[:2])


def labels(text):
    """Every N.M a tag covers: '1.8–1.9' covers 1.8 and 1.9."""
    found = set()
    for tag in TAG.findall(text):
        match = RANGE.match(tag.strip())
        assert match, f"unreadable equation tag {tag!r}"
        ch, first, ch2, last = match.groups()
        last = first if last is None else last
        found |= {f"{ch}.{n}" for n in range(int(first), int(last) + 1)}
    return found


def expand(first, last):
    if last is None:
        return {first}
    (c1, n1), (c2, n2) = first.split("."), last.split(".")
    if c1 != c2:
        return {first, last}
    return {f"{c1}.{n}" for n in range(int(n1), int(n2) + 1)}


def citations(text, chapter):
    cited = set()
    for first, last in CITE.findall(text):
        cited |= expand(first, last or None)
    for ch, n in PAREN.findall(text):
        if int(ch) == chapter:
            cited.add(f"{ch}.{n}")
    return {c for c in cited if int(c.split(".")[0]) == chapter}


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.stem)
def notebook(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_tags_sit_in_display_math(notebook):
    path, nb = notebook
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        outside = DISPLAY.sub("", cell.source)
        assert not TAG.search(outside), \
            f"{path.name} cell {i}: a \\tag outside $$...$$ shows nothing"


def test_every_cited_equation_is_labelled(notebook):
    path, nb = notebook
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    defined = labels("\n".join(DISPLAY.findall(markdown)))
    assert defined, f"{path.name} labels no equation"
    everything = "\n".join(c.source for c in nb.cells)
    missing = sorted(citations(everything, chapter_of(path)) - defined,
                     key=lambda s: int(s.split(".")[1]))
    assert not missing, f"{path.name} cites equations it never labels: {missing}"


def test_no_code_identifiers_inside_math(notebook):
    path, nb = notebook
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            inline = re.findall(r"(?<!\$)\$([^$]+)\$(?!\$)", cell.source)
            for math in DISPLAY.findall(cell.source) + inline:
                assert "_gradient" not in math and "ops." not in math, (path.name, i, math[:80])


def test_the_citation_scanner_finds_what_it_should():
    text = "see Eq. 4.9 and Eqs. 1.13–1.15, and the prior (4.11); not (2.5) in chapter 4"
    assert citations(text, 4) == {"4.9", "4.11"}
    assert citations(text, 1) == {"1.13", "1.14", "1.15"}
    assert labels(r"$$x \tag{1.8–1.9}$$ $$y \tag{1.10}$$") == {"1.8", "1.9", "1.10"}
