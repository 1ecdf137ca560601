"""The readiness report as a document (the JSON of ``/report.json``) and as a page (``/report``):
server-rendered HTML with its CSS inline, no script and no external asset, readable as it is."""
from __future__ import annotations

import time
from html import escape

from ..rules.profile import Profile
from .catalog import describe, slug
from .findings import Findings, iso

_KIND_ORDER = {"refused": 0, "differs": 1, "gateway-only": 2}
_KIND_LABEL = {"refused": "R2 refuses", "differs": "R2 differs", "gateway-only": "works via gateway only"}


def document(findings: Findings, profile: Profile, *, mode: str, source: str,
             now: float | None = None) -> dict:
    """The report as JSON-ready data (``source``: ``live`` or ``access-log``)."""
    described: dict[tuple[str, str], dict] = {}
    entries = []
    apps: dict[tuple, dict] = {}
    totals = {"refused": 0, "differs": 0, "gateway-only": 0}
    for r in findings.sorted_rows():
        d = described.get((r.finding, r.operation))
        if d is None:
            d = described[(r.finding, r.operation)] = describe(profile, r.finding, r.operation)
        entries.append({"finding": r.finding, "operation": r.operation, "access_key_id": r.access_key_id,
                        "user_agent": r.user_agent, "bucket": r.bucket, "count": r.count,
                        "first_seen": iso(r.first), "last_seen": iso(r.last), "example": r.example, **d})
        totals[d["kind"]] += r.count
        app = apps.setdefault((r.access_key_id, r.user_agent), {
            "access_key_id": r.access_key_id, "user_agent": r.user_agent, "findings": set(), "count": 0,
            "kind": d["kind"], "last_seen": r.last})
        app["findings"].add(r.finding if r.finding == r.operation else f"{r.finding} on {r.operation}")
        app["count"] += r.count
        app["last_seen"] = max(app["last_seen"], r.last)
        if _KIND_ORDER[d["kind"]] < _KIND_ORDER[app["kind"]]:
            app["kind"] = d["kind"]
    applications = sorted(apps.values(), key=lambda a: (_KIND_ORDER[a["kind"]], -a["count"],
                                                         a["access_key_id"] or "", a["user_agent"]))
    for a in applications:
        a["findings"] = sorted(a["findings"])
        a["last_seen"] = iso(a["last_seen"])
    breaking = sum(1 for a in applications if a["kind"] == "refused")
    if not entries:
        verdict = "No finding: nothing this gateway has seen would break on R2."
    elif breaking:
        verdict = f"{breaking} application(s) use what R2 refuses."
    else:
        verdict = "Nothing R2 refuses; some requests work only through the gateway or behave differently on R2."
    return {"report": "r2-readiness", "profile": profile.name, "mode": mode, "source": source,
            "generated": iso(time.time() if now is None else now),
            "since": iso(findings.since) if findings.since is not None else None,
            "verdict": verdict,
            "summary": {"rows": len(entries), "occurrences": sum(totals.values()), "by_kind": totals,
                        "applications": len(applications), "breaking_applications": breaking,
                        "folded": findings.folded},
            "applications": applications, "findings": entries}


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#c9d1e0}main{padding:18px 28px}
.verdict{padding:12px 16px;border-radius:6px;margin:0 0 18px;font-size:16px;background:#e8f5e9;border:1px solid #a5d6a7}
.verdict.bad{background:#fdecea;border-color:#f5b7b1}.verdict.warn{background:#fff8e1;border-color:#ffe082}
h2{font-size:17px;margin:26px 0 8px}table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{border:1px solid #dde1e8;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600;white-space:nowrap}td.n{text-align:right;white-space:nowrap}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f1f3f6;padding:1px 3px;border-radius:3px;word-break:break-all}
.k code{word-break:normal;white-space:nowrap}.ua{max-width:340px;word-break:break-word}td.ex{max-width:280px}td.t{white-space:nowrap;font-size:12px}.kind{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;white-space:nowrap}
.refused{background:#f8d7da;color:#842029}.differs{background:#fff3cd;color:#664d03}.gateway-only{background:#cfe2ff;color:#084298}
ul.fix{margin:0;padding-left:16px}ul.fix li{margin:0 0 4px}dl dt{font-weight:600;margin-top:10px}dl dd{margin:2px 0 0 18px}
.muted{color:#6b7280}footer{padding:14px 28px;color:#6b7280;font-size:12px}
"""


def _e(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def _kind(kind: str) -> str:
    return f'<span class="kind {_e(kind)}">{_e(_KIND_LABEL.get(kind, kind))}</span>'


def _fixes(fixes: list[dict]) -> str:
    if not fixes:
        return '<span class="muted">none known</span>'
    items = []
    for f in fixes:
        link = f' <a href="{_e(f["link"])}">docs</a>' if f.get("link") else ""
        items.append(f"<li><b>{_e(f['client'])}</b>: <code>{_e(f['fix'])}</code>{link}</li>")
    return '<ul class="fix">' + "".join(items) + "</ul>"


def _when(stamp: str) -> str:
    """``2026-01-02T03:04:05Z`` as date over time, in UTC."""
    date, _, clock = stamp.partition("T")
    return f"{_e(date)}<br>{_e(clock.rstrip('Z'))} UTC" if clock else _e(stamp)


def _short_ua(ua: str) -> str:
    """The user agent's first product token, the whole of it in a tooltip."""
    if not ua:
        return "(none)"
    first = ua.split(" ", 1)[0]
    if first == ua:
        return _e(ua)
    return f'<span title="{_e(ua)}">{_e(first)} …</span>'


def html(doc: dict) -> bytes:
    """The page for ``document()``'s output."""
    s = doc["summary"]
    cls = "bad" if s["breaking_applications"] else ("warn" if doc["findings"] else "")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>Is my app ready for R2? · r2-gateway</title>", f"<style>{_CSS}</style></head><body>",
           "<header><h1>Is my app ready for R2?</h1>",
           f"<p>Profile <b>{_e(doc['profile'])}</b> · mode <b>{_e(doc['mode'])}</b> · from {_e(doc['source'])}"
           f" · findings since {_e(doc['since'] or '—')} · generated {_e(doc['generated'])}</p></header><main>",
           f'<p class="verdict {cls}" id="verdict">{_e(doc["verdict"])}</p>',
           f"<p>{s['occurrences']} finding(s) in {s['rows']} row(s): "
           f"{s['by_kind']['refused']} R2 would refuse, {s['by_kind']['differs']} R2 would treat differently, "
           f"{s['by_kind']['gateway-only']} work only through the gateway."
           + (f" {s['folded']} folded into (other) rows (memory bound)." if s["folded"] else "") + "</p>"]
    if doc["applications"]:
        out += ["<h2>Applications</h2>", '<table id="applications"><thead><tr><th>Client key</th><th>User agent</th>'
                "<th>Worst</th><th>Findings</th><th>Count</th><th>Last seen</th></tr></thead><tbody>"]
        for a in doc["applications"]:
            out.append(f"<tr><td><code>{_e(a['access_key_id'] or '(none)')}</code></td>"
                       f'<td class="ua">{_e(a["user_agent"] or "(none)")}</td><td>{_kind(a["kind"])}</td>'
                       f"<td>{', '.join(f'<code>{_e(x)}</code>' for x in a['findings'])}</td>"
                       f'<td class="n">{a["count"]}</td><td class="t">{_when(a["last_seen"])}</td></tr>')
        out.append("</tbody></table>")
    out += ["<h2>Findings</h2>"]
    if not doc["findings"]:
        out.append('<p class="muted">None yet. Findings are recorded in audit and enforce mode.</p>')
    else:
        out.append('<table id="findings"><thead><tr><th>Finding</th><th>Kind</th><th>Operation</th><th>Client key</th>'
                   "<th>User agent</th><th>Bucket</th><th>Count</th><th>First seen</th><th>Last seen</th>"
                   "<th>Example request</th><th>R2 · fix</th></tr></thead><tbody>")
        says: dict[str, dict] = {}
        fixes: dict[str, dict] = {}
        for f in doc["findings"]:
            ex = f.get("example") or {}
            r2 = f.get("r2_says")
            links = []
            if r2:
                says.setdefault(r2["anchor"], r2)
                links.append(f'<a href="#{_e(r2["anchor"])}">what R2 says</a>')
            if f["fixes"]:
                anchor = "fix-" + slug(f["finding"])
                fixes.setdefault(anchor, f)
                links.append(f'<a href="#{_e(anchor)}">fix</a>')
            request = ex.get("request") or ""
            if len(request) > 120:
                request = request[:120] + "…"
            example = (f"<code title=\"{_e(ex.get('request'))}\">{_e(request)}</code><br><span class=\"muted\">→ {_e(ex.get('status'))}"
                       f"{' ' + _e(ex.get('error_code')) if ex.get('error_code') else ''}"
                       f" · {_e(ex.get('request_id'))}</span>") if ex else ""
            out.append(
                f"<tr><td><b>{_e(f['title'])}</b><br><code>{_e(f['finding'])}</code></td><td>{_kind(f['kind'])}</td>"
                f"<td>{_e(f['operation'])}</td><td class=\"k\"><code>{_e(f['access_key_id'] or '(none)')}</code></td>"
                f"<td>{_short_ua(f['user_agent'])}</td><td>{_e(f['bucket'] or '—')}</td>"
                f'<td class="n">{f["count"]}</td><td class="t">{_when(f["first_seen"])}</td>'
                f'<td class="t">{_when(f["last_seen"])}</td><td class="ex">{example}</td>'
                f"<td>{'<br>'.join(links) or '—'}</td></tr>")
        out.append("</tbody></table>")
        out += ["<h2>What R2 says</h2>", "<p>The rows of the compatibility profile the findings come from "
                f"(<code>r2-gateway compat --profile {_e(doc['profile'])}</code> prints the whole table).</p>",
                '<dl id="r2-says">']
        for anchor, r2 in says.items():
            doc_ref = f" · {_e(r2['doc'])}" if r2.get("doc") else ""
            out.append(f'<dt id="{_e(anchor)}">{_e(r2["text"])}</dt>'
                       f'<dd class="muted"><code>{_e(r2["where"])}</code>{doc_ref}</dd>')
        out.append("</dl>")
        if fixes:
            out += ["<h2>Client-side fixes</h2>", '<dl id="fixes">']
            for anchor, f in fixes.items():
                out.append(f'<dt id="{_e(anchor)}">{_e(f["title"])} <code>{_e(f["finding"])}</code> {_kind(f["kind"])}</dt>'
                           f"<dd>{_fixes(f['fixes'])}</dd>")
            out.append("</dl>")
    out += ["</main>", '<footer>The same report as JSON: <a href="report.json">report.json</a> · '
            "offline from access logs: <code>r2-gateway report --from ACCESS_LOG</code></footer></body></html>"]
    return "\n".join(out).encode("utf-8")
