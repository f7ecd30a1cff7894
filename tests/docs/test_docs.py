"""The documentation's promises that a reader follows blindly: every relative link
of README.md and docs/**/*.md leads to a file (and, into a markdown file, to a
heading that exists), every `make <target>` it names is a target of the Makefile,
and the README shows the two commands that open the project near its top."""

from __future__ import annotations

import re
import unicodedata
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = ROOT / "Makefile"
README = ROOT / "README.md"
FIRST_COMMANDS = ("make demo", "make test")
"""What the README must show within its first ``README_TOP_LINES`` lines."""
README_TOP_LINES = 60


def documents(root: Path = ROOT) -> list[Path]:
    """README.md and every markdown file under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


# --- reading markdown ----------------------------------------------------------------

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)"
)
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.MULTILINE)
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)


def split_code(text: str) -> tuple[str, list[str]]:
    """The text outside fenced code blocks (code lines blanked, so line numbers hold)
    and the lines inside them."""
    prose: list[str] = []
    code: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        opened = FENCE.match(line)
        if fence is None and opened:
            fence = opened.group(1)[0] * len(opened.group(1))
            prose.append("")
        elif fence is not None:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
            else:
                code.append(line)
            prose.append("")
        else:
            prose.append(line)
    return "\n".join(prose), code


def links(text: str) -> list[str]:
    """The targets of the inline links, images and reference definitions of ``text``,
    code blocks and code spans left out."""
    prose, _ = split_code(text)
    prose = INLINE_CODE.sub("", prose)
    found = [m.group(1) for m in INLINE_LINK.finditer(prose)]
    found += [m.group(1) for m in REFERENCE_DEFINITION.finditer(prose)]
    return [target.strip("<>") for target in found]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: the rendered text lower-cased, everything
    but letters, digits, marks, ``_``, ``-`` and spaces dropped, spaces made hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.replace("`", "").replace("*", "").lower()
    kept = [
        ch
        for ch in text
        if ch in " -_" or unicodedata.category(ch)[0] in "LMN" or unicodedata.category(ch) == "Pc"
    ]
    return "".join(kept).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor GitHub gives the headings of ``text`` (repeats get -1, -2, ...),
    and the explicit ``<a name=...>`` / ``id=`` anchors."""
    prose, _ = split_code(text)
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose.splitlines():
        heading = ATX_HEADING.match(line)
        if not heading:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    found.update(HTML_ANCHOR.findall(prose))
    return found


# --- make targets --------------------------------------------------------------------

TARGET_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:(?!=)", re.MULTILINE)
MAKE_COMMAND = re.compile(r"(?:^|[\s;&|(`])make((?:\s+[^\s;&|)`#]+)+)")


def make_targets(makefile: Path = MAKEFILE) -> set[str]:
    """The targets the Makefile defines (its ``target:`` lines)."""
    return set(TARGET_LINE.findall(makefile.read_text()))


def named_targets(command: str) -> list[str]:
    """The targets a ``make ...`` command line names: its words that are neither an
    option (``-j2``) nor a variable (``CLUSTER=kube``); ``make`` alone names none."""
    named: list[str] = []
    for match in MAKE_COMMAND.finditer(command):
        words = match.group(1).split()
        named += [w for w in words if not w.startswith("-") and "=" not in w]
    return named


def make_mentions(text: str) -> list[str]:
    """The targets named by ``make`` commands in the code spans and code blocks of
    ``text`` (comments of code blocks left out)."""
    prose, code = split_code(text)
    commands = [m.group(2) for m in INLINE_CODE.finditer(prose)]
    commands += [re.sub(r"(^|\s)#.*$", "", line) for line in code]
    found: list[str] = []
    for command in commands:
        for piece in command.splitlines():
            found += named_targets(piece.strip())
    return found


# --- the checks ------------------------------------------------------------------------


def problems(document: Path, root: Path = ROOT, targets: set[str] | None = None) -> list[str]:
    """What is wrong with ``document``'s links and make targets, one line each, naming the
    document and the missing thing."""
    text = document.read_text()
    name = document.relative_to(root).as_posix()
    known = make_targets(root / "Makefile") if targets is None else targets
    found: list[str] = []
    for target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("//"):
            continue  # http:, https:, mailto:: not a file of this repository
        path_part, _, anchor = target.partition("#")
        path_part = urllib.parse.unquote(path_part)
        anchor = urllib.parse.unquote(anchor)
        linked = (document.parent / path_part).resolve() if path_part else document
        if not linked.exists():
            found.append(f"{name}: links to {target}, but {path_part} does not exist")
            continue
        into_markdown = linked.suffix == ".md" and linked.is_file()
        if anchor and into_markdown and anchor not in anchors(linked.read_text()):
            where = linked.relative_to(root).as_posix() if linked.is_relative_to(root) else linked
            found.append(f"{name}: links to {target}, but {where} has no heading #{anchor}")
    for target in make_mentions(text):
        if target not in known:
            found.append(f"{name}: names `make {target}`, but the Makefile has no target {target}")
    return found


@pytest.mark.parametrize(
    "document", documents(), ids=lambda path: path.relative_to(ROOT).as_posix()
)
def test_every_link_and_make_target_of_the_document_exists(document: Path) -> None:
    # GIVEN a document of the project and the Makefile's targets
    targets = make_targets()
    # WHEN its relative links and its `make ...` commands are followed
    found = problems(document, targets=targets)
    # THEN each leads somewhere
    assert not found, "\n".join(found)


def test_the_readme_opens_with_the_two_commands() -> None:
    # GIVEN the README's first lines
    top = "\n".join(README.read_text().splitlines()[:README_TOP_LINES])
    # THEN both commands that open the project are there
    missing = [command for command in FIRST_COMMANDS if command not in top]
    assert not missing, f"README.md: {', '.join(missing)} not in its first {README_TOP_LINES} lines"


def test_the_documents_are_found() -> None:
    # GIVEN the documentation folder
    found = {path.relative_to(ROOT).as_posix() for path in documents()}
    # THEN the README and the manual's pages are all checked
    assert {"README.md", "docs/api.md", "docs/deploy-flow.md", "docs/routers/alb.md"} <= found


# --- the checker itself fails when it must ---------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Makefile").write_text(
        "SHELL := /bin/bash\n.PHONY: demo test\n\ndemo: venv ## x\n\techo\ntest:\n\techo\n"
    )
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text(
        "# Guide\n\n## The `alb` router (AWS Load Balancer Controller)\n\n## Tests and lint\n\n"
        "## Tests and lint\n"
    )
    return tmp_path


def test_the_checker_accepts_what_exists(project: Path) -> None:
    # GIVEN a README whose links, anchors and make commands all exist
    readme = project / "README.md"
    readme.write_text(
        "[guide](docs/guide.md), [alb](docs/guide.md#the-alb-router-aws-load-balancer-controller),"
        " [again](docs/guide.md#tests-and-lint-1), [top](#readme), [web](https://example.com/x)\n"
        "\n# Readme\n\n`make demo CLUSTER=kube`, `make -j2 test`\n\n```bash\nmake demo ROUTER=alb"
        "   # not make nothing\n```\n\n`[not a link](nowhere.md)`\n"
    )
    # THEN nothing is reported
    assert problems(readme, root=project) == []


def test_the_checker_names_the_file_and_what_is_missing(project: Path) -> None:
    # GIVEN a page with a link to no file, an anchor no heading has, and unknown targets
    page = project / "docs" / "page.md"
    page.write_text(
        "See [api](api.md), [guide](guide.md#no-such-heading), [self](#nowhere).\n\n"
        "Run `make demos`.\n\n```bash\nmake venv && make bench ARGS=1\n```\n\n# Page\n"
    )
    # WHEN it is checked
    found = problems(page, root=project)
    # THEN each missing thing is reported, with the page that names it
    assert found == [
        "docs/page.md: links to api.md, but api.md does not exist",
        "docs/page.md: links to guide.md#no-such-heading, but docs/guide.md has no heading "
        "#no-such-heading",
        "docs/page.md: links to #nowhere, but docs/page.md has no heading #nowhere",
        "docs/page.md: names `make demos`, but the Makefile has no target demos",
        "docs/page.md: names `make venv`, but the Makefile has no target venv",
        "docs/page.md: names `make bench`, but the Makefile has no target bench",
    ]


def test_the_makefile_targets_are_its_target_lines(project: Path) -> None:
    # GIVEN the Makefile's target lines and variable assignments
    # THEN only the targets count
    assert make_targets(project / "Makefile") == {"demo", "test"}
    assert {"demo", "test", "unit", "kube", "local"} <= make_targets()


def test_github_anchors() -> None:
    # GIVEN headings with code, punctuation and links
    # THEN they are anchored as GitHub anchors them
    assert slug("Who may call the API: the two caller policies") == (
        "who-may-call-the-api-the-two-caller-policies"
    )
    assert slug("Weights under `alb` and `gateway`") == "weights-under-alb-and-gateway"
    assert slug("The `bluegreen` CLI") == "the-bluegreen-cli"
    assert slug("Running against a real cluster outside EKS (or from a laptop)") == (
        "running-against-a-real-cluster-outside-eks-or-from-a-laptop"
    )
    assert slug("See [the API](api.md) now") == "see-the-api-now"
