"""`newtonbench score` through the real click CLI: exit codes, warnings, the table, model cards."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest
from click.testing import CliRunner

from newtonbench.cli import cli
from newtonbench.errors import InvalidValueError
from newtonbench.metrics.card import load_card, validate_card


def _run(*args):
    return CliRunner().invoke(cli, ["score", *map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def two_videos(score_bench, tmp_path_factory):
    d = tmp_path_factory.mktemp("vids")
    for cid in ("ramp_down-test-id-000000", "ramp_up-test-id-000000"):
        shutil.copy(score_bench / "videos" / f"{cid}.mp4", d / f"{cid}.mp4")
    (d / "stray-file.mp4").write_bytes(b"not a clip")
    return d


def test_cli_scores_with_card_and_prints_table(score_bench, two_videos, tmp_path):
    card = tmp_path / "card.yaml"
    card.write_text("name: Oracle-1\nlink: https://example.org/oracle\nparameters: 1.3B\nresolution: [256, 256]\n"
                    "fps: 16\nframes: 32\nsampling: {steps: 50, guidance: 5.0}\ndate: 2025-06-01\nnotes: own videos\n")
    out = tmp_path / "res"
    r = _run(two_videos, "--bench", score_bench, "--out", out, "--card", card, "--flow", "none",
             "--primitive", "ramp_down", "--primitive", "ramp_up", "--no-progress")
    assert r.exit_code == 0, r.output
    assert "ramp_down" in r.output and "accel_ratio" in r.output and "overall" in r.output
    assert "stray-file" in r.output  # unmatched files are a warning, not an error
    s = json.loads((out / "summary.json").read_text())
    assert s["model"]["name"] == "Oracle-1"
    assert s["model"]["card"] == {"name": "Oracle-1", "link": "https://example.org/oracle", "parameters": "1.3B",
                                  "resolution": "256x256", "fps": 16, "frames": 32,
                                  "sampling": {"steps": 50, "guidance": 5.0}, "date": "2025-06-01",
                                  "notes": "own videos"}
    assert s["status_counts"]["ok"] == 2


def test_cli_exit_codes(score_bench, two_videos, tmp_path):
    # missing clips are statuses: exit 0, unless --strict
    r = _run(two_videos, "--bench", score_bench, "--out", tmp_path / "a", "--model", "m", "--flow", "none",
             "--primitive", "free_fall", "--primitive", "ramp_up", "--no-progress")
    assert r.exit_code == 0, r.output
    r = _run(two_videos, "--bench", score_bench, "--out", tmp_path / "b", "--model", "m", "--flow", "none",
             "--primitive", "free_fall", "--primitive", "ramp_up", "--strict", "--no-progress")
    assert r.exit_code != 0 and "--strict" in r.output
    # nothing matched
    r = _run(two_videos, "--bench", score_bench, "--out", tmp_path / "c", "--model", "m", "--primitive", "free_fall")
    assert r.exit_code != 0 and "no video" in r.output
    # not a bench
    r = _run(two_videos, "--bench", two_videos, "--out", tmp_path / "d", "--model", "m")
    assert r.exit_code != 0 and "not a NewtonBench dataset" in r.output
    # no model name anywhere
    r = _run(two_videos, "--bench", score_bench, "--out", tmp_path / "e")
    assert r.exit_code != 0 and "--model" in r.output
    # a bad choice names what is allowed
    r = _run(two_videos, "--bench", score_bench, "--out", tmp_path / "f", "--model", "m", "--device", "tpu")
    assert r.exit_code != 0 and "cuda" in r.output
    # a bad frame rate: one line naming it and what is allowed, nothing written
    r = _run(two_videos, "--bench", score_bench, "--out", tmp_path / "g", "--model", "m", "--fps", "0")
    assert r.exit_code != 0 and "fps=0.0" in r.output and "> 0" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "g").exists()


def test_card_validation(tmp_path):
    assert validate_card({"name": "x", "date": dt.date(2025, 1, 2)})["date"] == "2025-01-02"
    for bad in ({"fps": -1}, {"frames": 2.5}, {"link": "ftp://x"}, {"resolution": "big"}, {"extra": 3},
                {"sampling": {"steps": [1, 2]}}, {"name": ""}):
        with pytest.raises(InvalidValueError, match=next(iter(bad))):
            validate_card(bad)
    p = tmp_path / "c.yaml"
    p.write_text("- not\n- a mapping\n")
    with pytest.raises(InvalidValueError, match="mapping"):
        load_card(p)
    p.write_text("name: [unclosed\n")
    with pytest.raises(InvalidValueError, match="YAML"):
        load_card(p)
