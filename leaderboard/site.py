"""The static page: one self-contained index.html (inline CSS and JS, no CDN, works from file://).

The numbers travel as one JSON block that the page's script draws with textContent only; the JSON is
written so that no string in it can close the <script> element (<, > and & are \\u-escaped), and the
only attribute that takes a model-provided URL (the card's link) accepts http(s) URLs alone.
"""

from __future__ import annotations

import html
import json
import re
import time
from importlib import resources

import newtonbench
from newtonbench.leaderboard.aggregate import ALL, COVERAGE, SCORE, Leaderboard
from newtonbench.leaderboard.tables import DIST_LABELS, HEADLINE, LABELS, card_lines, decimals_for, safe_url
from newtonbench.schema import GRAVITY

# Colour-blind-safe palette (Okabe & Ito), then Tableau's for more models.
PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
)

RULE = (
    "Ranked by the Newton score = mean over primitives of coverage × min(r, 1/r) × (1 − l2_norm), where r is the "
    "model's mean acceleration ratio (fitted / true; 1 = objects accelerate exactly as Newton says) and l2_norm "
    "the mean centroid error as a fraction of the image diagonal. Cells: mean ± std over a model's runs; the "
    "best value per column in green; — = no value. Click a column header to sort by it (best first), again to "
    "reverse."
)


def asset(name: str) -> str:
    return resources.files("newtonbench.leaderboard").joinpath("assets", name).read_text(encoding="utf-8")


def script_json(obj) -> str:
    """JSON that is safe inside <script type="application/json">: nothing in it can end the element."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _fields(lb: Leaderboard) -> list[dict]:
    out = []
    # Headline columns first, in the tables' order; then every other declared metric.
    keys = [f for f in HEADLINE if f in (SCORE, COVERAGE) or f in lb.metrics]
    for key in keys + [m for m in lb.metrics if m not in keys]:
        info = lb.info(key)
        out.append({
            "key": key,
            "label": LABELS.get(key, key),
            "unit": info.unit,
            "arrow": info.arrow,
            "dir": {True: 1, False: -1, None: 0}[info.higher_is_better],
            "target": info.target,
            "headline": key in HEADLINE,
            "description": info.description,
        })
    return out


def _slices(lb: Leaderboard) -> dict[str, list]:
    """'primitive|distribution' -> per model (rank order): {field: [mean, std, text, is_best]} or null."""
    out = {}
    fields = [SCORE, COVERAGE, *lb.metrics]
    for p, d in lb.slices:
        dec = {}
        best = {}
        for f in fields:
            cells = [c for m in lb.models if (c := lb.cell(p, d, m.name, f))]
            dec[f] = decimals_for([x for c in cells for x in (c.mean, c.std or 0.0)])
            best[f] = lb.best(p, d, f) if len(lb.models) > 1 else set()
        rows = []
        for m in lb.models:
            row = {}
            for f in fields:
                c = lb.cell(p, d, m.name, f)
                if c is None:
                    continue
                n = dec[f]
                text = f"{c.mean:.{n}f}" if c.std is None else f"{c.mean:.{n}f} ± {c.std:.{n}f}"
                row[f] = [c.mean, c.std, text, m.name in best[f]]
            rows.append(row or None)
        out[f"{p}|{d}"] = rows
    return out


def page_data(lb: Leaderboard, title: str, previews: list[dict]) -> dict:
    b = lb.benchmark
    index = {m.name: i for i, m in enumerate(lb.models)}
    scatter = []
    for model, pts in lb.scatter.items():
        for true, fit, prim, cid in pts:
            dist = cid.split("-")[2] if cid.count("-") >= 3 else ""
            scatter.append([index[model], round(true, 4), round(fit, 4), prim, dist, cid])
    versions = ", ".join(f"{k} v{v}" for k, v in sorted((b.get("primitive_versions") or {}).items()))
    return {
        "title": title,
        "subtitle": (
            f"{len(lb.models)} model(s) on NewtonBench, split {lb.split}; benchmark manifest "
            f"{str(b.get('manifest_sha256', ''))[:12]}" + (f" ({versions})" if versions else "")
        ),
        "rule": RULE,
        "footer": f"Built by newtonbench {newtonbench.__version__} leaderboard on {time.strftime('%Y-%m-%d')}.",
        "gravity": GRAVITY,
        "primitives": list(lb.primitives),
        "distributions": list(lb.distributions),
        "distLabels": {k: v for k, v in DIST_LABELS.items() if k != ALL},
        "fields": _fields(lb),
        "models": [
            {
                "name": m.name,
                "runs": len(m.runs),
                "color": PALETTE[i % len(PALETTE)],
                "link": safe_url((m.card or {}).get("link")),
                "card": [list(kv) for kv in card_lines(m.card or {})],
            }
            for i, m in enumerate(lb.models)
        ],
        "slices": _slices(lb),
        "scatter": scatter,
        "previews": previews,
    }


def render_page(lb: Leaderboard, title: str, previews: list[dict] | None = None) -> str:
    values = {
        "TITLE": html.escape(title),
        "CSS": asset("style.css"),
        "JS": asset("app.js"),
        "DATA": script_json(page_data(lb, title, previews or [])),
    }
    # One pass, so text substituted in (a title, the data) is never itself scanned for placeholders.
    return re.sub(r"\{\{(TITLE|CSS|JS|DATA)\}\}", lambda m: values[m.group(1)], asset("page.html"))
