"""The page in a real browser: Debian's headless Chromium opens index.html from disk (file://), the test reads
the rendered table, sorts it by a click, filters it, checks that a markup model name stays text, and takes a
screenshot that shows the charts. Skipped, with a message, where chromium is not installed."""

import pytest
from lb_fixtures import fall, row, write_results

from newtonbench.leaderboard import publish
from newtonbench.leaderboard.browser import chromium_path, open_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_path() is None, reason="chromium not installed (`make browser` installs Debian's)"),
]
pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install 'newtonbench[dev]')")

MARKUP = "<b>bold</b><img src=x onerror=\"document.title='pwned'\">"


@pytest.fixture(scope="module")
def index_html(tmp_path_factory):
    base = tmp_path_factory.mktemp("page")
    # Newton score order: oracle > g7 > MARKUP(g4); l2 order (ascending): oracle 1 < MARKUP 5 < g7 9.
    models = {"oracle": (1.0, 1.0), "gravity g=7.0": (0.71, 9.0), MARKUP: (0.41, 5.0)}
    for i, (name, (ratio, l2)) in enumerate(models.items()):
        rows = [row(p, d, k, **fall(ratio, l2 + k)) for p in ("free_fall", "ramp_down") for d in ("id", "ood")
                for k in range(2)]
        write_results(base / "r" / str(i), name, rows, card={"name": name, "link": "https://example.org"})
    _, files = publish([base / "r"], base / "site", previews=0, progress=False)
    return files["html"]


def _table(page):
    return page.eval_on_selector_all(
        "#board tbody tr", "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent))"
    )


def test_page_renders_sorts_filters_and_escapes(index_html, tmp_path):
    with open_page(index_html) as page:
        headers = page.eval_on_selector_all("#board thead th", "ths => ths.map(t => t.textContent)")
        assert headers[:5] == ["#", "model", "runs", "Newton score ↑", "coverage ↑"]
        rows = _table(page)
        assert [r[1] for r in rows] == ["oracle", "gravity g=7.0", MARKUP]  # ranked by the Newton score
        assert rows[0][2] == "1" and rows[0][4] == "1.000"

        # Sort by l2 (lower is better): a click puts the smallest first, a second click reverses.
        page.click("#board thead th[data-key='l2']")
        assert [r[1] for r in _table(page)] == ["oracle", MARKUP, "gravity g=7.0"]
        assert page.get_attribute("#board thead th[data-key='l2']", "aria-sort") == "ascending"
        page.click("#board thead th[data-key='l2']")
        assert [r[1] for r in _table(page)] == ["gravity g=7.0", MARKUP, "oracle"]
        # Sort by accel_ratio: closest to 1 first (0.71 beats 0.41), whatever the values' order.
        page.click("#board thead th[data-key='accel_ratio']")
        assert [r[1] for r in _table(page)] == ["oracle", "gravity g=7.0", MARKUP]

        # Filters: one primitive, one distribution; cells show that slice's means (l2 of clips k=0,1: +0.5).
        page.select_option("#f-primitive", "ramp_down")
        page.select_option("#f-distribution", "ood")
        l2 = page.eval_on_selector_all("#board tbody td[data-key='l2']", "tds => tds.map(t => t.textContent)")
        assert sorted(l2) == ["1.500", "5.500", "9.500"]
        assert page.eval_on_selector_all("#bars .chart", "cs => cs.map(c => c.dataset.primitive)") == ["ramp_down"]
        page.select_option("#f-primitive", "all")
        page.select_option("#f-distribution", "all")

        # The markup name is text: shown verbatim, and no element of it exists anywhere in the page.
        assert page.evaluate("document.querySelectorAll('b, img').length") == 0
        assert page.title() != "pwned"
        shown = page.eval_on_selector_all("#board td.model", "tds => tds.map(t => t.textContent)")
        assert MARKUP in shown
        cards = page.eval_on_selector_all("#cards .card h3", "hs => hs.map(h => h.textContent)")
        assert cards == ["oracle", "gravity g=7.0", MARKUP]
        assert page.get_attribute("#board td.model a", "href") == "https://example.org"

        # Charts: one bar chart per primitive with a bar per model, and the scatter with a point per clip.
        assert page.locator("#bars .chart").count() == 2
        assert page.locator("#bars rect[data-model]").count() == 6
        assert page.locator("#scatter-svg circle").count() == 3 * 8
        png = tmp_path / "leaderboard.png"
        page.locator("#scatter").scroll_into_view_if_needed()
        page.screenshot(path=str(png), full_page=True)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
