"""The docs stay true to the code: docs/cli.md is what the Typer app generates, the claims table of docs/results.md is
what its claim files give, and every relative link in the README and docs/ reaches a file (and heading) that exists."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from test_cli import assert_user_error, kdnlp

from kdnlp.cli.docs import render
from kdnlp.core.errors import KdnlpError
from kdnlp.tools.claims import END, START, check, claim_from_seeds, format_claims, load_claims, verdict, write_table

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CLAIMS = sorted((DOCS / "results").glob("*.json"))
REGENERATE = "regenerate it: python -m kdnlp.cli.docs > docs/cli.md"


def test_cli_page_is_what_the_app_generates():
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == render(), REGENERATE


def test_cli_page_lists_every_command_with_its_options():
    page = render()
    for heading in ("## `kdnlp distill`", "## `kdnlp claims`", "### `kdnlp claims add`", "### `kdnlp recipes show`"):
        assert heading in page
    assert "* `-r, --recipe <str>`: Recipe name" in page and "[required]" in page
    assert "seed-&lt;n&gt;/" not in page and "seed-&lt;n>/" in page  # a placeholder stays visible as Markdown


def test_claims_table_in_results_md_is_what_the_claim_files_give():
    page = (DOCS / "results.md").read_text(encoding="utf-8")
    block = page.split(START + "\n", 1)[1].split("\n" + END, 1)[0]
    assert block == format_claims(load_claims(CLAIMS)), ("regenerate it: kdnlp claims table docs/results/*.json "
                                                         "--page docs/results.md")
    sections = page.split("\n## ")
    assert sections[1].startswith("Claims at a glance") and START in sections[1]  # the table opens the page


def test_claim_files_say_where_each_figure_comes_from():
    for path in CLAIMS:
        claim = json.loads(path.read_text(encoding="utf-8"))
        assert claim["source"].startswith("transcribed from docs/results.md#") or claim["source"].endswith(
            "summary.json"), path
        if claim["status"] != "current":
            assert re.fullmatch(r"[0-9a-f]{7,40}", claim["commit"]), path


def claim(**score) -> dict:
    base = {"seeds": [1, 2, 3], "n": 3, "mean": 88.26, "sd": 0.43, "control_mean": 87.19, "control_sd": 0.98,
            "differences": [0.57, 0.80, 1.83], "difference": 1.07, "difference_se": 0.39}
    return {"claim": "hinton beats its twin", "task": "sst2", "metric": "accuracy", "recipe": "hinton",
            "control": "twin", "score": {**base, **score}, "teacher": 89.79,
            "target": {"min_se": 2, "min_pct": 98.5}, "source": "transcribed from docs/results.md#x",
            "status": "current"}


def test_verdict_checks_the_standard_errors_and_the_share_of_the_teacher():
    assert verdict(claim()) == "missed: 98.3% of the teacher, not 98.5%"
    met = claim()
    met["target"]["min_pct"] = 98.0
    assert verdict(met) == "**met**"
    below = claim(differences=[0.1, 0.2, 0.3], difference=0.2, difference_se=0.06, mean=80.0)
    assert verdict(below) == "missed: 89.1% of the teacher, not 98.5%"
    assert verdict(claim(difference=-0.69, difference_se=0.40, differences=None)).startswith("missed: -1.7 SE")


def test_a_claim_whose_figures_disagree_is_refused():
    check(claim(), "x.json")
    with pytest.raises(KdnlpError, match=r"x.json.*give \+1.07 ± 0.39, not the \+1.70"):
        check(claim(difference=1.70), "x.json")
    with pytest.raises(KdnlpError, match="not the .* ± 0.93"):
        check(claim(difference_se=0.93), "x.json")
    with pytest.raises(KdnlpError, match="2 differences for 3 seeds"):
        check(claim(differences=[0.57, 0.80]), "x.json")
    with pytest.raises(KdnlpError, match="98.5% of the teacher but it has no teacher score"):
        check({**claim(), "teacher": None}, "x.json")
    with pytest.raises(KdnlpError, match="needs the commit"):
        check({**claim(), "status": "superseded"}, "x.json")
    with pytest.raises(KdnlpError, match="bad status 'old'; valid: current, pre-fix, superseded"):
        check({**claim(), "status": "old"}, "x.json")


def seeds_folder(root: Path, control: str | None = "hinton-control") -> Path:
    folder = root / "seeds-hinton"
    folder.mkdir()
    score = {"seeds": [1, 2], "n": 2, "mean": 0.875, "sd": 0.01, "control_mean": 0.865, "control_sd": 0.005,
             "differences": [0.005, 0.015], "difference": 0.01, "difference_se": 0.005}
    (folder / "summary.json").write_text(json.dumps({"task": "sst2", "recipe": "hinton", "control_recipe": control,
                                                     "scale": 100.0, "runs": {}, "score": score}))
    return folder


def test_a_seeds_folder_becomes_a_claim_file_and_a_row(tmp_path):
    out = tmp_path / "results" / "20-hinton.json"
    out.parent.mkdir()
    written = claim_from_seeds(seeds_folder(tmp_path), "hinton above its twin", out, teacher=89.79,
                               section="over-seeds")
    assert json.loads(out.read_text()) == written
    s = written["score"]
    assert s["seeds"] == [1, 2] and s["mean"] == 87.5 and s["differences"] == [0.5, 1.5]
    assert (s["difference"], s["difference_se"]) == (1.0, 0.5)
    assert written["source"] == str(tmp_path / "seeds-hinton" / "summary.json") and written["status"] == "current"
    table = format_claims(load_claims([out]))
    row = table.splitlines()[2]
    assert "[hinton above its twin](#over-seeds)" in row and "1, 2" in row and "`hinton` 87.50 ± 1.00" in row
    assert "**+1.00 ± 0.50**" in row and "97.4%" in row and "missed: +2.0 SE, not above 2" in row
    assert "seeds-hinton/summary.json" in row and "transcribed" not in row


def test_seeds_without_a_control_or_no_seeds_folder_are_refused(tmp_path):
    with pytest.raises(KdnlpError, match="is not a seeds folder"):
        claim_from_seeds(tmp_path, "x", tmp_path / "x.json")
    with pytest.raises(KdnlpError, match="ran no control"):
        claim_from_seeds(seeds_folder(tmp_path, control=None), "x", tmp_path / "x.json")


def test_the_table_goes_between_the_markers_and_nowhere_else(tmp_path):
    page = tmp_path / "results.md"
    page.write_text(f"# Results\n\n{START}\nold table\n{END}\n\n## A section\n")
    assert write_table(page, "| new |") is True
    assert page.read_text() == f"# Results\n\n{START}\n| new |\n{END}\n\n## A section\n"
    assert write_table(page, "| new |") is False
    page.write_text("# Results, no markers\n")
    with pytest.raises(KdnlpError, match="give a page holding the marker lines"):
        write_table(page, "| new |")
    assert page.read_text() == "# Results, no markers\n"


def test_a_damaged_claim_file_is_refused(tmp_path):
    damaged = tmp_path / "01-damaged.json"
    damaged.write_text('{"claim": "cut short"')
    with pytest.raises(KdnlpError, match="01-damaged.json' is damaged"):
        load_claims([damaged])


def test_claims_add_writes_the_file_and_the_table_in_one_command(tmp_path):
    folder, results, page = seeds_folder(tmp_path), tmp_path / "results", tmp_path / "results.md"
    results.mkdir()
    page.write_text("# Results\n")
    add = ["claims", "add", folder, "--claim", "hinton above its twin", "-o", results / "01-hinton.json",
           "--page", page]
    assert_user_error(kdnlp(*add), "marker lines")
    assert not any(results.iterdir())  # refused before anything was written
    page.write_text(f"# Results\n{START}\n{END}\n")
    result = kdnlp(*add)
    assert result.returncode == 0, result.stderr
    table = format_claims(load_claims([results / "01-hinton.json"]))
    assert page.read_text() == f"# Results\n{START}\n{table}\n{END}\n"
    assert_user_error(kdnlp(*add), "exists; pass --overwrite")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation (backticks, colons...) dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        fenced ^= line.startswith("```")
        if fenced or not line.startswith("#"):
            continue
        anchor = github_anchor(line.lstrip("#"))
        out.add(anchor if anchor not in seen else f"{anchor}-{seen[anchor]}")
        seen[anchor] = seen.get(anchor, 0) + 1
    return out


PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file_and_heading(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: link to '{target}': no such file"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name}: link to '{target}': no such heading in {linked.name}"


def test_anchor_rule():
    assert github_anchor(" Over seeds: SST-2, `hinton` against its no-teacher twin (issue 13)") == \
        "over-seeds-sst-2-hinton-against-its-no-teacher-twin-issue-13"
    assert github_anchor(" `kdnlp claims add`") == "kdnlp-claims-add"
