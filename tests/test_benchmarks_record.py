"""The record of measured figures: BENCHMARKS.md's table of current figures and the reports under
benchmarks/reports/ it points to (each figure copied from its report, every cited report present,
the table on one screen)."""

import re

import yaml

from conftest import REPO

REPORTS = REPO / "benchmarks" / "reports"
BENCH = REPO / "BENCHMARKS.md"
# a report's name wherever it is cited: date, stage, topic
REPORT_NAME = re.compile(r"\b(20\d\d-\d\d-\d\d-[a-z][a-z0-9]*(?:-[a-z0-9]+)+)(?:\.md)?\b")
CITING = ["README.md", "BENCHMARKS.md", "config.yaml", "src", "benchmarks", "tests", "workflow", "docs", "configs"]


def table_rows() -> list[list[str]]:
    """BENCHMARKS.md's opening table, one list of cells per row."""
    text = BENCH.read_text()
    rows = [line for line in text.split("\n## ")[0].splitlines() if line.startswith("|")]
    header, _, *body = rows
    return [[c.strip() for c in row.strip("|").split("|")] for row in [header, *body]]


def test_the_table_of_current_figures_fits_one_screen():
    opening = BENCH.read_text().split("\n## ")[0]
    assert len(opening.splitlines()) <= 40, "BENCHMARKS.md's opening (up to its first ## section) is over 40 lines"
    header, *rows = table_rows()
    assert header[:3] == ["measured", "figure", "device"] and "report" in header and "state" in header
    assert len(rows) >= 10


def test_every_figure_of_the_table_is_copied_from_its_report():
    header, *rows = table_rows()
    figure_col, date_col, commit_col, report_col = (header.index(k) for k in ("figure", "date", "commit", "report"))
    for row in rows:
        m = re.fullmatch(r"\[([^\]]+)\]\((benchmarks/reports/[^)]+\.md)\)", row[report_col])
        assert m, f"the report cell of {row[0]!r} is not one link into benchmarks/reports/: {row[report_col]}"
        path = REPO / m.group(2)
        assert path.is_file(), f"{row[0]}: no report {m.group(2)}"
        assert m.group(1) == path.stem
        body = path.read_text()
        for number in re.findall(r"\d[\d,.]*\d|\d", row[figure_col]):
            assert has_number(body, number), f"{row[0]}: {number} is not in {path.name}"
        assert row[date_col] in body, (row[0], row[date_col])
        assert row[commit_col] == "-" or row[commit_col] in body or row[commit_col] in cited_commits(), (
            row[0], row[commit_col])


def has_number(text: str, number: str) -> bool:
    """``number`` in ``text`` as a whole number (the 1 of "1.3x" is not found in "21.3")"""
    return re.search(rf"(?<!\d)(?<!\d[.,]){re.escape(number)}(?!\d)(?![.,]\d)", text) is not None


def cited_commits() -> set[str]:
    data = yaml.safe_load((REPO / "src/recall2reason/plan/throughputs.yaml").read_text())
    return {r["commit"] for stage in ("pretrain", "sample") for r in data[stage]}


def test_every_report_is_indexed_and_opens_with_its_date_device_commits_command():
    text = BENCH.read_text()
    linked = set(re.findall(r"\]\((benchmarks/reports/[^)]+)\)", text))
    files = {f"benchmarks/reports/{p.name}" for p in REPORTS.glob("*.md")}
    assert linked <= files, f"BENCHMARKS.md links reports that do not exist: {sorted(linked - files)}"
    assert files <= linked, f"reports missing from BENCHMARKS.md's index: {sorted(files - linked)}"
    for p in sorted(REPORTS.glob("*.md")):
        assert REPORT_NAME.fullmatch(p.name), p.name
        head = p.read_text().splitlines()[:9]
        assert head[0].startswith("# "), p.name
        for key in ("- Date: ", "- Device: ", "- Commits named in the entry: ", "- Command: "):
            assert any(line.startswith(key) for line in head), (p.name, key)


def test_every_report_cited_in_code_docs_and_the_plan_exists():
    data = yaml.safe_load((REPO / "src/recall2reason/plan/throughputs.yaml").read_text())
    for stage in ("pretrain", "sample"):
        for r in data[stage]:
            assert (REPO / r["report"]).is_file(), r["report"]
    files = {p.stem for p in REPORTS.glob("*.md")}
    stages = {name[11:].split("-")[0] for name in files} | {"pretrain", "sample", "vote", "judge", "data", "probe"}
    missing = []
    for name in CITING:
        root = REPO / name
        paths = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []
        for path in paths:
            if path.suffix not in {".md", ".py", ".yaml", ".yml", ".sh", ".smk", ".rst", ".txt"} and path.name not in {
                    "Snakefile", "Makefile"}:
                continue
            for m in REPORT_NAME.finditer(path.read_text(errors="replace")):
                stage = m.group(1)[11:].split("-")[0]
                if stage in stages and m.group(1) not in files:
                    missing.append(f"{path.relative_to(REPO)}: {m.group(1)}")
    assert not missing, "cited reports that do not exist:\n" + "\n".join(missing)


def test_the_readme_figures_are_those_of_the_benchmarks_table():
    readme = (REPO / "README.md").read_text()
    brief = readme[readme.index("Current figures, in brief"):]
    rows = [line for line in brief.split("\n\n")[1].splitlines() if line.startswith("|")][2:]
    assert rows, "README's table of current figures is missing"
    opening = BENCH.read_text().split("\n## ")[0]
    for row in rows:
        figure = row.strip("|").split("|")[1]
        for number in re.findall(r"\d[\d,.]*\d|\d", figure):
            assert has_number(opening, number), f"README's {number} is not in BENCHMARKS.md's table"
