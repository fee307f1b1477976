"""Aggregation against hand-computed means and stds, the Newton score, the ranking, and refusals."""

import copy
import json
import math

import pytest
from click.testing import CliRunner
from lb_fixtures import BENCHMARK, METRICS, fall, row, write_results

from newtonbench.cli import cli
from newtonbench.leaderboard import ResultsError, build, load_runs, newton_score
from newtonbench.leaderboard.aggregate import ALL

D = 256 * math.sqrt(2)  # the image diagonal the fixtures' l2_norm divides by


@pytest.fixture
def three_runs(tmp_path):
    """alpha: two runs; beta: one run that missed a clip and has no iou column at all."""
    write_results(tmp_path / "alpha-1", "alpha", [
        row("free_fall", "id", 0, **fall(1.0, 2.0)),
        row("free_fall", "ood", 1, **fall(0.9, 4.0)),
        row("ramp_down", "id", 0, **fall(1.1, 6.0)),
    ])
    write_results(tmp_path / "alpha-2", "alpha", [
        row("free_fall", "id", 0, **fall(0.8, 3.0)),
        row("free_fall", "ood", 1, **fall(1.0, 5.0)),
        row("ramp_down", "id", 0, **fall(1.2, 7.0)),
    ])
    write_results(tmp_path / "beta", "beta", [
        row("free_fall", "id", 0, **fall(0.5, 10.0)),
        row("free_fall", "ood", 1, status="missing_video"),
        row("ramp_down", "id", 0, **fall(0.5, 20.0)),
    ], drop_columns=("iou",))
    return tmp_path


def test_cells_are_means_and_stds_over_runs(three_runs):
    lb = build(load_runs([three_runs]))
    # alpha's run means of l2: (2+4+6)/3 = 4 and (3+5+7)/3 = 5 -> 4.5 ± sqrt(0.5) (sample std, ddof=1).
    c = lb.cell(ALL, ALL, "alpha", "l2")
    assert (c.mean, c.n_runs) == (pytest.approx(4.5), 2)
    assert c.std == pytest.approx(math.sqrt(0.5))
    # Per primitive: free_fall (2+4)/2 = 3 and (3+5)/2 = 4 -> 3.5 ± sqrt(0.5).
    c = lb.cell("free_fall", ALL, "alpha", "l2")
    assert (c.mean, c.std) == (pytest.approx(3.5), pytest.approx(math.sqrt(0.5)))
    # Per distribution: OOD accel_ratio 0.9 and 1.0 -> 0.95 ± 0.0707.
    c = lb.cell(ALL, "ood", "alpha", "accel_ratio")
    assert (c.mean, c.std) == (pytest.approx(0.95), pytest.approx(math.sqrt(0.005)))
    # One run: no std; the failed clip is not averaged in; coverage counts it.
    c = lb.cell(ALL, ALL, "beta", "l2")
    assert (c.mean, c.std, c.n_runs) == (pytest.approx(15.0), None, 1)
    assert lb.cell(ALL, ALL, "beta", "coverage").mean == pytest.approx(2 / 3)
    assert lb.cell("free_fall", "ood", "beta", "coverage").mean == 0.0
    # Missing, never 0: beta has no iou column, and no scored clip in free_fall/ood.
    assert lb.cell(ALL, ALL, "beta", "iou") is None
    assert lb.cell("free_fall", "ood", "beta", "l2") is None
    assert lb.primitives == ("free_fall", "ramp_down") and lb.distributions == ("id", "ood")


def test_newton_score_by_hand(three_runs):
    lb = build(load_runs([three_runs]))
    # beta: free_fall has 1 of 2 clips scored (r = 0.5, l2 = 10 px); ramp_down 1 of 1 (r = 0.5, l2 = 20 px).
    beta = 0.5 * (0.5 * 0.5 * (1 - 10 / D) + 1.0 * 0.5 * (1 - 20 / D))
    assert lb.cell(ALL, ALL, "beta", "score").mean == pytest.approx(beta)
    # alpha run 1: free_fall r = 0.95, l2 = 3; ramp_down r = 1.1 -> min(r, 1/r) = 1/1.1, l2 = 6.
    s1 = 0.5 * (0.95 * (1 - 3 / D) + (1 / 1.1) * (1 - 6 / D))
    s2 = 0.5 * (0.9 * (1 - 4 / D) + (1 / 1.2) * (1 - 7 / D))
    c = lb.cell(ALL, ALL, "alpha", "score")
    assert c.mean == pytest.approx((s1 + s2) / 2)
    assert c.std == pytest.approx(abs(s1 - s2) / math.sqrt(2))
    assert [m.name for m in lb.models] == ["alpha", "beta"]
    assert lb.best(ALL, ALL, "l2") == {"alpha"}
    # accel_ratio's best is the one closest to 1 in log space: alpha's 1.15 (|log 1.15| = 0.14) beats beta's 0.5.
    assert lb.best("ramp_down", ALL, "accel_ratio") == {"alpha"}


def test_newton_score_rule():
    assert newton_score([(1.0, 1.0, 0.0)]) == 1.0
    # Twice too fast is exactly as wrong as twice too slow.
    assert newton_score([(1.0, 2.0, 0.0)]) == newton_score([(1.0, 0.5, 0.0)]) == 0.5
    # A primitive with nothing scored counts 0; primitives weigh equally.
    assert newton_score([(0.0, None, None), (1.0, 1.0, 0.0)]) == 0.5
    assert newton_score([(1.0, 0.0, 0.1)]) == 0.0  # frozen video: no acceleration at all
    assert newton_score([(0.5, 1.0, 0.2)]) == pytest.approx(0.4)
    assert newton_score([(1.0, None, 0.1)]) is None
    assert newton_score([]) is None


def test_ranking_follows_physics_not_trajectory_alone(tmp_path):
    # "slow" tracks well early (small l2) but falls at 0.6 g; "right" falls at g with a larger offset.
    write_results(tmp_path / "a", "slow", [row("free_fall", "id", i, **fall(0.6, 3.0)) for i in range(3)])
    write_results(tmp_path / "b", "right", [row("free_fall", "id", i, **fall(1.0, 12.0)) for i in range(3)])
    write_results(tmp_path / "c", "fast", [row("free_fall", "id", i, **fall(1.5, 3.0)) for i in range(3)])
    lb = build(load_runs([tmp_path]))
    assert [m.name for m in lb.models] == ["right", "fast", "slow"]


def test_mixed_benchmark_versions_are_refused(tmp_path):
    write_results(tmp_path / "a", "alpha", [row("free_fall", "id", 0, **fall(1.0, 1.0))])
    other = dict(BENCHMARK, manifest_sha256="cd" * 32)
    write_results(tmp_path / "b", "beta", [row("free_fall", "id", 0, **fall(1.0, 1.0))], benchmark=other)
    with pytest.raises(ResultsError, match="different benchmark versions"):
        load_runs([tmp_path / "a", tmp_path / "b"])
    bumped = dict(BENCHMARK, primitive_versions={"free_fall": 2, "ramp_down": 1})
    write_results(tmp_path / "b", "beta", [row("free_fall", "id", 0, **fall(1.0, 1.0))], benchmark=bumped)
    with pytest.raises(ResultsError, match="free_fall v2"):
        load_runs([tmp_path / "a", tmp_path / "b"])
    # Through the CLI: one line, non-zero exit, nothing written.
    res = CliRunner().invoke(cli, ["leaderboard", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "site")])
    assert res.exit_code != 0
    assert "different benchmark versions" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "site").exists()


def test_mixed_metric_versions_are_refused(tmp_path):
    write_results(tmp_path / "a", "alpha", [row("free_fall", "id", 0, **fall(1.0, 1.0))])
    metrics = copy.deepcopy(METRICS)
    metrics["l2"]["version"] = 2
    write_results(tmp_path / "b", "beta", [row("free_fall", "id", 0, **fall(1.0, 1.0))], metrics=metrics)
    with pytest.raises(ResultsError, match="metric 'l2' has version '1' in .* but '2' in"):
        load_runs([tmp_path])


def test_bad_inputs_fail_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="holds no summary.json"):
        load_runs([tmp_path / "empty"])
    write_results(tmp_path / "old", "alpha", [row("free_fall", "id", 0, **fall(1.0, 1.0))])
    summary = json.loads((tmp_path / "old" / "summary.json").read_text())
    summary["format_version"] = "0"
    (tmp_path / "old" / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ResultsError, match="format_version '0'"):
        load_runs([tmp_path / "old"])
    write_results(tmp_path / "nores", "alpha", [row("free_fall", "id", 0, **fall(1.0, 1.0))])
    (tmp_path / "nores" / "results.parquet").unlink()
    with pytest.raises(ResultsError, match="no results.parquet"):
        load_runs([tmp_path / "nores"])


def test_edited_results_are_reported(tmp_path, caplog):
    folder = write_results(tmp_path / "a", "alpha", [row("free_fall", "id", 0, **fall(1.0, 1.0))])
    summary = json.loads((folder / "summary.json").read_text())
    summary["groups"][0]["metrics"]["l2"]["mean"] = 0.25
    (folder / "summary.json").write_text(json.dumps(summary))
    build(load_runs([folder]))
    assert "l2 mean for free_fall/id is 1.0 in results.parquet but 0.25 in summary.json" in caplog.text
