"""Tables as a pure function of a Leaderboard, and their Markdown, CSV and LaTeX (booktabs) writers.

Every column carries its unit and an arrow for its direction (↑ higher is better, ↓ lower is better,
→1 closest to 1 is best); the best value per column is marked (bold); a missing cell is "—", never 0.
Every model-provided string is escaped for the format it lands in.
"""

from __future__ import annotations

import csv
import html
import io
import math
import re
from dataclasses import dataclass, replace

from newtonbench.leaderboard.aggregate import ALL, COVERAGE, SCORE, Cell, Leaderboard

MISSING = "—"
# Columns of the overall and per-slice tables, when present in the results; everything else (normalised and
# pixel variants, signed accel_fit components) is in leaderboard.csv and on the page.
HEADLINE = (
    SCORE, COVERAGE, "accel_ratio", "l2", "chamfer", "iou", "rmse_v", "rmse_a",
    "smoothness", "consistency", "kinematic_residual",
)
LABELS = {SCORE: "Newton score", COVERAGE: "coverage"}
DIST_LABELS = {"id": "ID", "ood": "OOD", ALL: "all"}


@dataclass(frozen=True)
class Column:
    primitive: str
    distribution: str
    field: str
    label: str
    unit: str
    arrow: str

    @property
    def header(self) -> str:
        unit = f" ({self.unit})" if self.unit else ""
        return f"{self.label}{unit} {self.arrow}".rstrip()


@dataclass(frozen=True)
class Row:
    rank: int
    model: str
    runs: int
    cells: tuple[Cell | None, ...]
    best: tuple[bool, ...]


@dataclass(frozen=True)
class Table:
    key: str  # stable identifier (LaTeX label, CSV section)
    title: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    decimals: tuple[int, ...]

    def text(self, i: int, j: int) -> str:
        """Cell (row i, column j) as plain text: 'mean ± std', 'mean' for one run, '—' when missing."""
        c = self.rows[i].cells[j]
        if c is None:
            return MISSING
        d = self.decimals[j]
        return f"{c.mean:.{d}f}" if c.std is None else f"{c.mean:.{d}f} ± {c.std:.{d}f}"


def decimals_for(values: list[float]) -> int:
    """Decimals for a column from its largest magnitude: 0.952, 1.003, 17.50, 123.4, 0.0123 (at most 6)."""
    big = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
    if big == 0.0:
        return 3
    e = math.floor(math.log10(big))
    # Ratios and scores near 1 keep three decimals (1.003 vs 0.998 matters); larger numbers four digits.
    return max(0, min(6, 2 - e if e < 0 else 3 - e))


def make_table(lb: Leaderboard, key: str, title: str, columns: list[Column]) -> Table:
    rows, cols = [], tuple(columns)
    best = {(c.primitive, c.distribution, c.field): lb.best(c.primitive, c.distribution, c.field) for c in cols}
    for rank, model in enumerate(lb.models, start=1):
        cells = tuple(lb.cell(c.primitive, c.distribution, model.name, c.field) for c in cols)
        marks = tuple(model.name in best[(c.primitive, c.distribution, c.field)] and len(lb.models) > 1 for c in cols)
        rows.append(Row(rank, model.name, len(model.runs), cells, marks))
    decimals = tuple(
        decimals_for([x for r in rows if (c := r.cells[j]) for x in (c.mean, c.std or 0.0)]) for j in range(len(cols))
    )
    return Table(key, title, cols, tuple(rows), decimals)


def column(lb: Leaderboard, primitive: str, distribution: str, field: str, label: str | None = None) -> Column:
    info = lb.info(field)
    return Column(primitive, distribution, field, label or LABELS.get(field, field), info.unit, info.arrow)


def available_fields(lb: Leaderboard, fields=None) -> list[str]:
    fields = HEADLINE if fields is None else fields
    return [f for f in fields if f in (SCORE, COVERAGE) or f in lb.metrics]


def slice_table(lb: Leaderboard, primitive: str = ALL, distribution: str = ALL, fields=None) -> Table:
    cols = [column(lb, primitive, distribution, f) for f in available_fields(lb, fields)]
    if (primitive, distribution) == (ALL, ALL):
        return make_table(lb, "overall", "Overall", cols)
    title = " / ".join(x for x in (primitive if primitive != ALL else "", DIST_LABELS.get(distribution, distribution) if distribution != ALL else "") if x)
    return make_table(lb, f"slice-{primitive}-{distribution}", title, cols)


def by_primitive_table(lb: Leaderboard, field: str, distribution: str = ALL) -> Table:
    """One field across primitives: Newton score per primitive, accel_ratio per primitive, ..."""
    # The unit is in the title; the columns are the primitives.
    cols = [replace(column(lb, p, distribution, field, label=p), unit="") for p in lb.primitives]
    label = LABELS.get(field, field)
    info = lb.info(field)
    unit = f" ({info.unit})" if info.unit else ""
    return make_table(lb, f"by-primitive-{field}", f"Per primitive: {label}{unit} {info.arrow}".rstrip(), cols)


def id_vs_ood_table(lb: Leaderboard, fields=(SCORE, "accel_ratio", "l2")) -> Table:
    cols = [
        column(lb, ALL, d, f, label=f"{LABELS.get(f, f)} {DIST_LABELS.get(d, d)}")
        for f in available_fields(lb, fields)
        for d in lb.distributions
    ]
    return make_table(lb, "id-vs-ood", "In distribution against out of distribution", cols)


def standard_tables(lb: Leaderboard, fields=None) -> list[Table]:
    """The tables of leaderboard.md and leaderboard.tex, in order."""
    tables = [slice_table(lb, fields=fields)]
    for f in (SCORE, "accel_ratio", "l2"):
        if f in available_fields(lb, (f,)):
            tables.append(by_primitive_table(lb, f))
    if len(lb.distributions) > 1:
        tables.append(id_vs_ood_table(lb))
    tables += [slice_table(lb, p, ALL, fields) for p in lb.primitives]
    return tables


# --- Markdown -----------------------------------------------------------------------------------------------

# Inline syntax only: names sit inside table cells and list items, never at the start of a line, and with
# brackets escaped no parenthesis can become a link target.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_SAFE_URL = re.compile(r"^https?://[^\s<>\"'`]+$")


def md_escape(s: str) -> str:
    """Model-provided text as inert Markdown: HTML markup and Markdown syntax shown as text."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(s), quote=False)).replace("\n", " ")


def md_header(s: str) -> str:
    """Column headers come from metric declarations, not models: keep them readable, only inert."""
    return html.escape(str(s), quote=False).replace("|", "\\|")


def safe_url(url) -> str | None:
    """An http(s) URL without characters that could break out of a link; anything else is not a link."""
    return url if isinstance(url, str) and _SAFE_URL.match(url) else None


def table_markdown(t: Table) -> str:
    head = ["#", "model", "runs", *(md_header(c.header) for c in t.columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---:", ":---", "---:"] + ["---:"] * len(t.columns)) + "|"]
    for i, r in enumerate(t.rows):
        cells = [f"**{t.text(i, j)}**" if r.best[j] else t.text(i, j) for j in range(len(t.columns))]
        lines.append("| " + " | ".join([str(r.rank), md_escape(r.model), str(r.runs), *cells]) + " |")
    return "\n".join(lines)


def card_lines(card: dict) -> list[tuple[str, str]]:
    """(key, value) pairs of a model card, values as text, the name left out."""
    # The card format's order (metrics/card.py), then any other key by name: summary.json sorts keys.
    known = ("link", "parameters", "resolution", "fps", "frames", "sampling", "date")
    keys = [k for k in known if k in card] + sorted(k for k in card if k not in known)
    out = []
    for k, v in ((k, card[k]) for k in keys):
        if k == "name" or v is None:
            continue
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        elif isinstance(v, list | tuple):
            v = "x".join(map(str, v)) if k == "resolution" else ", ".join(map(str, v))
        out.append((str(k), str(v)))
    return out


def write_markdown(lb: Leaderboard, tables: list[Table], title: str) -> str:
    b = lb.benchmark
    parts = [
        f"# {md_escape(title)}",
        "",
        (
            f"Benchmark manifest `{str(b.get('manifest_sha256', ''))[:12]}`, split `{lb.split}`, "
            f"{len(lb.models)} model(s). Each cell is the mean over the model's runs ± their standard deviation "
            "(no ± for a single run); the best value per column is in bold; — is missing. "
            "Ranked by the Newton score: the mean over primitives of coverage × min(r, 1/r) × (1 − l2_norm), "
            "r the mean acceleration ratio (fitted / true)."
        ),
    ]
    for t in tables:
        parts += ["", f"## {md_header(t.title)}", "", table_markdown(t)]
    cards = [(m, m.card) for m in lb.models if m.card]
    if cards:
        parts += ["", "## Models", ""]
        for m, card in cards:
            items = []
            for k, v in card_lines(card):
                url = safe_url(v) if k == "link" else None
                items.append(f"{md_escape(k)}: <{url}>" if url else f"{md_escape(k)}: {md_escape(v)}")
            parts.append(f"- **{md_escape(m.name)}**" + (" — " + "; ".join(items) if items else ""))
    return "\n".join(parts) + "\n"


# --- CSV ----------------------------------------------------------------------------------------------------


def csv_cell(s: str) -> str:
    """Neutralise spreadsheet formulas in model-provided text (OWASP CSV injection)."""
    s = str(s)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def write_csv(lb: Leaderboard) -> str:
    """Every cell of every slice, one tidy row each (full precision, no formatting)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["rank", "model", "runs", "primitive", "distribution", "field", "unit", "direction",
                "mean", "std", "n_runs", "best"])
    fields = [SCORE, COVERAGE, *lb.metrics]
    for rank, m in enumerate(lb.models, start=1):
        for p, d in lb.slices:
            for f in fields:
                info = lb.info(f)
                c = lb.cell(p, d, m.name, f)
                direction = {True: "higher", False: "lower", None: ""}[info.higher_is_better]
                if info.target is not None:
                    direction = f"target {info.target:g}"
                w.writerow([
                    rank, csv_cell(m.name), len(m.runs), p, d, f, info.unit, direction,
                    "" if c is None else repr(c.mean), "" if c is None or c.std is None else repr(c.std),
                    0 if c is None else c.n_runs, int(m.name in lb.best(p, d, f)) if c else 0,
                ])
    return buf.getvalue()


# --- LaTeX (booktabs) ----------------------------------------------------------------------------------------

_TEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
}
_SUPER = "⁰¹²³⁴⁵⁶⁷⁸⁹⁻"
_TEX_UNICODE = {"↑": r"$\uparrow$", "↓": r"$\downarrow$", "→": r"$\to$", "±": r"$\pm$", "—": "---"}


def tex_escape(s: str) -> str:
    out = []
    # Units carry superscripts (m/s², px²/frame⁶): each run of them becomes one $^{...}$.
    for k, part in enumerate(re.split(f"([{_SUPER}]+)", str(s))):
        if k % 2:
            out.append("$^{" + part.translate(str.maketrans(_SUPER, "0123456789-")) + "}$")
            continue
        for ch in part:
            if ch in _TEX_SPECIAL:
                out.append(_TEX_SPECIAL[ch])
            elif ch in _TEX_UNICODE:
                out.append(_TEX_UNICODE[ch])
            elif ord(ch) < 32:
                out.append(" ")
            else:
                out.append(ch)
    return "".join(out)


def table_latex(t: Table) -> str:
    spec = "rlr" + "r" * len(t.columns)
    head = ["\\#", "Model", "Runs", *(tex_escape(c.header) for c in t.columns)]
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\caption{{{tex_escape(t.title)}}}",
        f"\\label{{tab:newtonbench-{t.key}}}",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(head) + " \\\\",
        "\\midrule",
    ]
    for i, r in enumerate(t.rows):
        cells = []
        for j in range(len(t.columns)):
            txt = tex_escape(t.text(i, j))
            cells.append(f"\\textbf{{{txt}}}" if r.best[j] else txt)
        lines.append(" & ".join([str(r.rank), tex_escape(r.model), str(r.runs), *cells]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines)


def write_latex(lb: Leaderboard, tables: list[Table], title: str) -> str:
    head = [
        f"% {tex_escape(title)}: written by `newtonbench leaderboard`; \\input{{}} it in a document",
        "% that loads \\usepackage{booktabs}. Cells: mean $\\pm$ std over runs; best per column in bold.",
    ]
    return "\n".join(head) + "\n\n" + "\n\n".join(table_latex(t) for t in tables) + "\n"
