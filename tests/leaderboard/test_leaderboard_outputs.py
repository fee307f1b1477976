"""The written files: Markdown, CSV and LaTeX tables, the page's data, escaping, previews and the CLI."""

import csv
import io
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from lb_fixtures import fall, row, write_results

from newtonbench.cli import cli
from newtonbench.leaderboard import publish
from newtonbench.leaderboard.tables import tex_escape

NASTY = '<img src=x onerror="alert(1)">|*x*_{}&</script>'


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("lb")
    write_results(base / "r" / "alpha-1", "alpha", [
        row("free_fall", "id", 0, **fall(1.0, 2.0)), row("ramp_down", "ood", 0, **fall(1.1, 6.0))],
        card={"name": "alpha", "link": "https://example.org/alpha", "parameters": "1.3B", "resolution": [480, 832],
              "fps": 16, "frames": 33, "sampling": {"steps": 50, "cfg": 5.0}, "date": "2026-11-01"})
    write_results(base / "r" / "alpha-2", "alpha", [
        row("free_fall", "id", 0, **fall(0.8, 3.0)), row("ramp_down", "ood", 0, **fall(1.2, 7.0))])
    write_results(base / "r" / "nasty", NASTY, [
        row("free_fall", "id", 0, **fall(0.5, 10.0)), row("ramp_down", "ood", 0, status="object_lost")],
        card={"name": NASTY, "link": "javascript:alert(1)", "notes": "<b>bold</b>"}, drop_columns=("iou",))
    write_results(base / "r" / "formula", "=HYPERLINK(\"http://x\")", [
        row("free_fall", "id", 0, **fall(0.3, 30.0)), row("ramp_down", "ood", 0, **fall(0.3, 30.0))])
    lb, files = publish([base / "r"], base / "site", previews=0, progress=False)
    return lb, files


def test_markdown_table(site):
    _, files = site
    md = files["md"].read_text()
    lines = md.splitlines()
    header = next(ln for ln in lines if ln.startswith("| # | model"))
    # Units and direction arrows in every metric header.
    for h in ("Newton score ↑", "coverage ↑", "accel_ratio →1", "l2 (px) ↓", "iou ↑"):
        assert h in header
    alpha = next(ln for ln in lines if ln.startswith("| 1 | alpha | 2 |"))
    cells = [c.strip() for c in alpha.strip("|").split("|")]
    # alpha's l2 run means: (2+6)/2 = 4, (3+7)/2 = 5 -> 4.5 ± 0.707, the best (bold) of the column; the
    # column's largest value (30 px) sets four significant digits: two decimals.
    assert cells[header.strip("|").split("|").index(" l2 (px) ↓ ")] == "**4.50 ± 0.71**"
    nasty = next(ln for ln in lines if "onerror" in ln)
    assert "<img" not in md and "&lt;img" in nasty and "\\|" in nasty and "\\*x\\*" in nasty
    assert nasty.count("—") >= 1  # no iou: missing, not 0
    assert "| 0.000" not in nasty.split("—")[0][-10:]
    assert "## Models" in md and "<https://example.org/alpha>" in md and "javascript:" in md
    assert "(javascript" not in md  # shown as text, never as a link


def test_csv_is_tidy_and_exact(site):
    _, files = site
    rows = list(csv.DictReader(io.StringIO(files["csv"].read_text())))
    got = {(r["model"], r["primitive"], r["distribution"], r["field"]): r for r in rows}
    c = got[("alpha", "all", "all", "l2")]
    assert float(c["mean"]) == pytest.approx(4.5) and float(c["std"]) == pytest.approx(np.std([4, 5], ddof=1))
    assert c["unit"] == "px" and c["direction"] == "lower" and c["best"] == "1" and c["n_runs"] == "2"
    assert got[("alpha", "all", "all", "accel_ratio")]["direction"] == "target 1"
    assert got[(NASTY, "all", "all", "iou")]["mean"] == ""  # missing stays empty, never 0
    assert ("'=HYPERLINK(\"http://x\")", "all", "all", "l2") in got  # no formula injection


def test_latex_booktabs(site):
    _, files = site
    tex = files["tex"].read_text()
    assert tex.count("\\toprule") == tex.count("\\bottomrule") == tex.count("\\midrule") >= 4
    assert "\\textbf{4.50 $\\pm$ 0.71}" in tex
    assert "accel\\_ratio $\\to$1" in tex and "l2 (px) $\\downarrow$" in tex
    assert "\\textless{}img src=x onerror=\"alert(1)\"\\textgreater{}\\textbar{}*x*\\_\\{\\}\\&" in tex
    assert tex_escape("rmse_a (m/s²) ↓") == "rmse\\_a (m/s$^{2}$) $\\downarrow$"
    assert tex_escape("px²/frame⁶ x\x00y") == "px$^{2}$/frame$^{6}$ x y"
    # Every brace in the body is balanced: no model name can break the document.
    body = re.sub(r"\\[{}]", "", tex)
    assert body.count("{") == body.count("}")


def test_html_escapes_model_strings(site):
    _, files = site
    page = files["html"].read_text()
    assert "<img" not in page and "<b>bold" not in page
    assert page.count("</script>") == 2  # the data block and the script: nothing closed them early
    data = json.loads(re.search(r'id="leaderboard-data">(.*?)</script>', page, re.DOTALL).group(1))
    names = [m["name"] for m in data["models"]]
    assert NASTY in names and names[0] == "alpha"
    links = {m["name"]: m["link"] for m in data["models"]}
    assert links["alpha"] == "https://example.org/alpha" and links[NASTY] is None
    # Every slice the filters can pick exists, one entry per model in rank order.
    for p in ["all", "free_fall", "ramp_down"]:
        for d in ["all", "id", "ood"]:
            if (p, d) in (("free_fall", "ood"), ("ramp_down", "id")):
                continue
            assert len(data["slices"][f"{p}|{d}"]) == 3
    # Self-contained: no external script, stylesheet, font or image; the CSS and JS are inline.
    assert re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=", page) is None
    assert "@import" not in page and "url(" not in page


def test_cli_writes_everything_and_prints_ranking(site, tmp_path):
    _, files = site
    results = files["md"].parent.parent / "r"
    res = CliRunner().invoke(cli, ["leaderboard", str(results), "--out", str(tmp_path / "s"), "--previews", "0",
                                   "--format", "md", "--format", "csv", "--metrics", "score,accel_ratio"])
    assert res.exit_code == 0, res.output
    d = 256 * np.sqrt(2)
    # alpha's runs: free_fall (ID) and ramp_down (OOD), each min(r, 1/r) × (1 − l2 / diagonal).
    s1 = (1.0 * (1 - 2 / d) + (1 / 1.1) * (1 - 6 / d)) / 2
    s2 = (0.8 * (1 - 3 / d) + (1 / 1.2) * (1 - 7 / d)) / 2
    first = res.output.splitlines()[0].split()
    assert first == ["1", f"{(s1 + s2) / 2:.3f}", "±", f"{abs(s1 - s2) / np.sqrt(2):.3f}", "alpha", "(2", "runs)"]
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["leaderboard.csv", "leaderboard.md"]
    res = CliRunner().invoke(cli, ["leaderboard", str(results), "--out", str(tmp_path / "t"), "--metrics", "l3"])
    assert res.exit_code != 0 and "metric 'l3' is not in the results" in res.output


def test_previews_are_animated_webp(tmp_path):
    from newtonbench.video import write_video

    videos = tmp_path / "videos"
    frames = np.zeros((12, 64, 96, 3), np.uint8)
    for t in range(12):
        frames[t, 10 + 3 * t: 20 + 3 * t, 40:50] = (255, 80, 0)
    write_video(videos / "free_fall-test-id-000000.mp4", frames, fps=16)
    write_results(tmp_path / "r", "alpha", [row("free_fall", "id", 0, **fall(1.0, 2.0))],
                  config={"videos": str(videos)})
    _, files = publish([tmp_path / "r"], tmp_path / "site", previews=1, progress=False)
    data = json.loads(re.search(r'id="leaderboard-data">(.*?)</script>', files["html"].read_text(), re.DOTALL).group(1))
    (ex,) = data["previews"]
    assert ex["clip_id"] == "free_fall-test-id-000000" and ex["truth"] is None  # the bench is gone
    assert ex["verdicts"] == ["a / a_true = 1.00"]
    webp = (tmp_path / "site" / ex["models"][0]).read_bytes()
    assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP" and b"ANIM" in webp and webp.count(b"ANMF") == 12
