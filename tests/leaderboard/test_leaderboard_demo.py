"""`make demo` end to end, small: generate, re-simulate with weaker gravity, score, publish; the ranking must
follow the physics (the demo itself checks it and exits non-zero otherwise)."""

import json
import re

import pytest
from click.testing import CliRunner

from newtonbench.demo import ORACLE, expected_order, main


def test_expected_order_is_by_relative_gravity_error():
    assert expected_order((4.0, 7.0)) == [ORACLE, "gravity g=7", "gravity g=4"]
    # 2 g is as wrong as g / 2 in log space; 12 m/s² is closer to 9.81 than 7 is.
    assert expected_order((7.0, 12.0, 19.62)) == [ORACLE, "gravity g=12", "gravity g=7", "gravity g=19.62"]


@pytest.mark.slow
def test_demo_ranks_oracle_first_and_weakest_gravity_last(tmp_path):
    # Small and fast: one clip per primitive and distribution, 128 px, 16 frames, no optical flow.
    res = CliRunner().invoke(main, ["--out", str(tmp_path), "--clips", "1", "--size", "128", "--frames", "16",
                                    "--flow", "none", "--workers", "1", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "the ranking follows the physics: oracle (ground truth) > gravity g=7 > gravity g=4" in res.output
    page = tmp_path / "site" / "index.html"
    assert res.output.strip().endswith(f"leaderboard page: {page}")
    data = json.loads(re.search(r'id="leaderboard-data">(.*?)</script>', page.read_text(), re.DOTALL).group(1))
    assert [m["name"] for m in data["models"]] == [ORACLE, "gravity g=7", "gravity g=4"]
    # The fitted accelerations say why: the re-simulated models fall at about 7/9.81 and 4/9.81 of g.
    ratio = [row["accel_ratio"][0] for row in data["slices"]["free_fall|all"]]
    assert ratio == pytest.approx([1.0, 7 / 9.81, 4 / 9.81], rel=0.05)
    # Previews of the ground truth and of every model, one clip per primitive.
    assert len(data["previews"]) == 5 and all(ex["truth"] and all(ex["models"]) for ex in data["previews"])

    # Again in the same folder with one model fewer: the finished clips are reused, and the leaderboard holds
    # this run's models only (results/gravity-4 from the first run stays out).
    res = CliRunner().invoke(main, ["--out", str(tmp_path), "--clips", "1", "--size", "128", "--frames", "16",
                                    "--flow", "none", "--workers", "1", "--no-progress", "--gravity", "7"])
    assert res.exit_code == 0, res.output
    assert "the ranking follows the physics: oracle (ground truth) > gravity g=7\n" in res.output
    assert (tmp_path / "results" / "gravity-4" / "summary.json").exists()
