"""cohort.html: one self-contained page (no network, no files beside it) of a cohort's table.

``cohort_html`` is pure: it takes the rows of the cohort table (dicts keyed by column) and a few facts about the
run, and returns text. Every value from the run (slide names, errors, paths) is HTML-escaped. Failed slides are
marked in red; clicking a column's header sorts the table (a few lines of inline script; without script the
table keeps its input order). Each finished slide's name links to its heatmap in its sub-folder.
"""

from __future__ import annotations

from html import escape

CSS = """
body{font-family:-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:24px;color:#1d1d1d;line-height:1.4}
table{border-collapse:collapse;font-size:14px} th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#eef2f6;cursor:pointer} td.text{text-align:left} tr.failed td{background:#fde8e8;color:#8a1010}
tr.pending td{color:#888} .note{color:#505050;font-size:13px;max-width:1000px}
"""
SORT_SCRIPT = """
document.querySelectorAll('th').forEach(function(th, col){th.addEventListener('click', function(){
 var body=th.closest('table').tBodies[0], rows=Array.from(body.rows), up=th.dataset.up!=='1'; th.dataset.up=up?'1':'0';
 function key(r){var t=r.cells[col].dataset.v, n=parseFloat(t);
  return t===''?null:(t==='inf'?Infinity:(isNaN(n)?t:n));}
 rows.sort(function(a,b){var x=key(a),y=key(b); if(x===null) return 1; if(y===null) return -1;
  return (x<y?-1:x>y?1:0)*(up?1:-1);}); rows.forEach(function(r){body.appendChild(r);});});});
"""
HEADERS = {
    "slide": "slide",
    "status": "status",
    "tissue_tiles": "tissue tiles",
    "positive_fraction": "called {positive}",
    "top_k_score": "score (top {k})",
    "uncertain_fraction": "uncertain",
    "median_flip_eps_255": "median flip eps /255",
    "p10_flip_eps_255": "10th pct flip eps /255",
    "seconds": "seconds",
}
TEXT_COLUMNS = ("slide", "status")


def cohort_html(rows: list[dict], facts: dict) -> str:
    """The page. ``facts``: model, model_sha256, top_k, positive, robustness (a text or None), uncertain_note (why
    that column is empty, or None), updated (a time), and each row may carry ``seconds``."""
    columns = [c for c in HEADERS if c != "median_flip_eps_255" or facts.get("robustness")]
    columns = [c for c in columns if c != "p10_flip_eps_255" or facts.get("robustness")]
    labels = {"positive": facts.get("positive") or "positive", "k": facts.get("top_k", "")}
    head = "".join(f"<th>{escape(HEADERS[c].format(**labels))}</th>" for c in columns)
    body = "\n".join(_row(r, columns) for r in rows)
    done = sum(r.get("status") == "done" for r in rows)
    failed = sum(r.get("status") == "failed" for r in rows)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>HistoGuard cohort</title><style>{CSS}</style></head><body>
<h1>Cohort: {len(rows)} slides</h1>
<p>{done} done, {failed} failed, {len(rows) - done - failed} not yet run. Model {escape(str(facts.get("model", "")))}
(sha256 <code>{escape(str(facts.get("model_sha256", "")))}</code>); updated {escape(str(facts.get("updated", "")))}.</p>
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table>
{_notes(facts)}
<script>{SORT_SCRIPT}</script>
</body></html>
"""


def _row(row: dict, columns: list[str]) -> str:
    status = str(row.get("status", ""))
    cells = []
    for c in columns:
        value, text = row.get(c), _text(row.get(c), c)
        if c == "slide" and status == "done" and row.get("folder"):
            shown = f'<a href="{escape(str(row["folder"]))}/heatmap.png">{escape(text)}</a>'
        elif c == "status" and status == "failed":
            shown = f"failed: {escape(str(row.get('error', '')))}"
        else:
            shown = escape(text)
        sort_value = "" if value is None else escape(str(value), quote=True)
        cls = ' class="text"' if c in TEXT_COLUMNS else ""
        cells.append(f'<td{cls} data-v="{sort_value}">{shown}</td>')
    return f'<tr class="{escape(status, quote=True)}">{"".join(cells)}</tr>'


def _text(value, column: str) -> str:
    if value is None or value == "":
        return ""
    if column in ("positive_fraction", "uncertain_fraction") and _is_number(value):
        return f"{float(value):.1%}"
    if column == "top_k_score" and _is_number(value):
        return f"{float(value):.3f}"
    if column == "seconds" and _is_number(value):
        return f"{float(value):.1f}"
    return str(value)


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _notes(facts: dict) -> str:
    notes = [
        f"Score: the mean of the {facts.get('top_k', '')} highest tile probabilities of "
        f"{facts.get('positive') or 'the positive class'} (fewer tiles when a slide has fewer). Called: the fraction "
        "of tissue tiles with p &ge; 0.5.",
        "Uncertain: the fraction of tiles whose calibrated probability lies inside the model's review band"
        + (f"; {escape(facts['uncertain_note'])}." if facts.get("uncertain_note") else "."),
    ]
    if facts.get("robustness"):
        notes.append(
            f"Flip eps ({escape(str(facts['robustness']))}): the smallest eps, in /255 of the pixel range, at which a "
            "white-box attack changes a tile's call; the median over the slide's tiles and the 10th percentile (the "
            "fragile end); inf: not flipped within the search."
        )
    notes.append("Research tool, not a medical device: every call must be reviewed by a pathologist.")
    return "".join(f'<p class="note">{n}</p>' for n in notes)
