"""`mailgov report`: the yearly evaluation as HTML (charts), CSV and Markdown.

The HTML is one self-contained file: inline CSS, charts as inline SVG drawn here (no script,
no font, no image fetched: the servers and the auditors' machines are offline), a Content
Security Policy that forbids any load, and print styles so a browser prints it to PDF. Each
bar of a chart carries its figure (``data-value``) and prints it, so a test can compare what
the browser draws with the snapshot. Per-person rows appear only in a unit's own report
(``--unit``), and ``--conceal-names`` replaces names and addresses by row numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from mailgov.cells import csv_text
from mailgov.i18n import translator
from mailgov.usage import BUCKETS, WINDOWS, Evaluation, Figures, Person, percent


@dataclass(frozen=True, slots=True)
class Options:
    lang: str = "vi"
    unit: str | None = None  # a unit's own report (per-person rows)
    conceal: bool = False


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float  # what the bar's length shows
    text: str  # what is printed next to it


def _bucket_names(_: Callable[[str], str]) -> dict[str, str]:
    return {"good": _("Good"), "warning": _("Warning"), "cant_send": _("Can't send"),
            "cant_send_receive": _("Can't send/receive"), "unknown": _("No data")}


# --------------------------------------------------------------------------- SVG


def bar_chart(chart_id: str, title: str, bars: Sequence[Bar], scale_max: float,
              series: str = "") -> str:
    """A horizontal bar chart as inline SVG; each bar's figure is in data-value and printed."""
    label_w, bar_w, row_h, top = 230, 360, 22, 8
    height = top + row_h * max(len(bars), 1) + 8
    width = label_w + bar_w + 90
    parts = [f'<figure class="chart" id="{escape(chart_id)}"><figcaption>{escape(title)}'
             f'</figcaption><svg xmlns="http://www.w3.org/2000/svg" role="img" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'aria-label="{escape(title)}">']
    for i, b in enumerate(bars):
        y = top + i * row_h
        w = 0.0 if scale_max <= 0 else bar_w * min(b.value, scale_max) / scale_max
        parts.append(
            f'<g class="bar{(" " + series) if series else ""}" data-label="{escape(b.label)}" '
            f'data-value="{b.value:g}">'
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" class="lbl">'
            f'{escape(b.label[:34])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.2f}" height="{row_h - 6}"/>'
            f'<text x="{label_w + w + 5:.2f}" y="{y + 15}" class="val">{escape(b.text)}</text>'
            "</g>")
    if not bars:
        parts.append(f'<text x="10" y="{top + 15}">–</text>')
    parts.append("</svg></figure>")
    return "".join(parts)


# --------------------------------------------------------------------------- helpers


def _label(f: Figures, lang: str) -> str:
    return (f.name_en if lang == "en" and f.name_en else f.name) or f.id


def _selected(ev: Evaluation, opts: Options) -> list[Figures]:
    return [ev.unit(opts.unit)] if opts.unit else ev.units


def _people(f: Figures, conceal: bool) -> list[tuple[str, str, Person]]:
    """(shown name, shown address, row); concealed rows are numbered, ordered by figures."""
    rows = sorted(f.people, key=lambda p: (p.address,))
    if not conceal:
        return [(p.name, p.address, p) for p in rows]
    # Ordered by the figures, not by name or address: the order must not reveal who is who.
    rows.sort(key=lambda p: (p.sent, p.received, p.last_login or date.min, p.bucket))
    return [(f"#{i}", "–", p) for i, p in enumerate(rows, 1)]


def _pct(share: float | None) -> str:
    return "–" if share is None else percent(share) + " %"


def _trend(now: Figures, before: Figures | None, window: int) -> str:
    if before is None:
        return "–"
    d = now.regular.get(window, 0) - before.regular.get(window, 0)
    return f"{d:+d}"


# --------------------------------------------------------------------------- HTML

CSS = """
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:1.5em;color:#222;font-size:14px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:2px 6px}
td.n{text-align:right}th{background:#eef}
.chart{margin:.8em 0;page-break-inside:avoid}.chart figcaption{font-weight:bold}
.chart rect{fill:#2a6fb0}.chart .before rect{fill:#9bb9d6}.chart .lbl,.chart .val{font-size:12px}
.gap{background:#fee;border:1px solid #c00;padding:.5em}
.note{color:#555;font-size:.9em}
@media print{body{margin:0}h2{page-break-after:avoid}.chart{page-break-inside:avoid}}
"""
# Nothing may load: not a script, a font, an image or a style sheet from anywhere.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render_html(ev: Evaluation, before: Evaluation | None, opts: Options) -> str:
    tr = translator(opts.lang)
    _ = tr.gettext
    w = ev.window
    units = _selected(ev, opts)
    subject = units[0] if opts.unit else ev.ministry
    title = _("Official e-mail usage: evaluation report")
    t_snapshot, t_window, t_days = _("Snapshot of"), _("window"), _("days")
    t_compared = _("compared with the snapshot of")
    t_gaps, t_summary, t_charts = _("Not collected:"), _("Summary"), _("Charts")
    t_units, t_people, t_defs = _("Units"), _("Mailboxes of the unit"), _("Definitions")
    definitions = _(
        "Staff with a mailbox: active personal mailboxes of the unit, of the headcount HR "
        "gives. Regular use: logged in (IMAP, POP3 or webmail; deliveries do not count) and "
        "sent at least one message within the window. Inactive: no login within the "
        "inactivity lock period of the policy. Quota buckets as Microsoft 365's mailbox usage "
        "report: warning from 98 %, can't send from 99 %, can't send/receive from 100 % of "
        "the quota. Unit mailbox read: working days (Monday to Friday) with a read.")
    out = [f'<!DOCTYPE html><html lang="{opts.lang}"><head><meta charset="utf-8">'
           f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
           f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{escape(title)}</h1>",
           f'<p id="subject"><b>{escape(_label(subject, opts.lang))}</b></p>',
           f'<p>{escape(t_snapshot)} <span id="snapshot-day">{ev.snapshot_day}</span>; '
           f'{escape(t_window)} <span id="window">{w}</span> {escape(t_days)}'
           + (f"; {escape(t_compared)} {before.snapshot_day}" if before else "") + "</p>"]
    if ev.gaps:
        out.append(f'<div class="gap" id="gaps"><b>{escape(t_gaps)}</b> '
                   + "; ".join(escape(g) for g in ev.gaps) + "</div>")
    out.append(f"<h2>{escape(t_summary)}</h2>")
    out.append(_summary_table(subject, _))
    out.append(f"<h2>{escape(t_charts)}</h2>")
    out.extend(_charts(ev, before, units, opts, _))
    if not opts.unit:
        out.append(f"<h2>{escape(t_units)}</h2>")
        out.append(_units_table(ev, before, units, opts, _))
    else:
        out.append(f"<h2>{escape(t_people)}</h2>")
        out.append(_people_table(subject, opts, _))
    out.append(f'<h2>{escape(t_defs)}</h2><p class="note">{escape(definitions)}</p>'
               "</body></html>")
    return "".join(out)


def _row(label: str, value: str, key: str) -> str:
    return f'<tr><th>{escape(label)}</th><td class="n" id="sum-{key}">{escape(value)}</td></tr>'


def _summary_table(f: Figures, _: Callable[[str], str]) -> str:
    rows = [
        _row(_("Headcount"), "–" if f.headcount is None else str(f.headcount), "headcount"),
        _row(_("Staff with a mailbox"), str(f.mailboxes), "mailboxes"),
        _row(_("Staff with a mailbox, % of headcount"), percent(f.adoption), "adoption"),
    ]
    for w in WINDOWS:
        rows.append(_row(_("Regular users, last {days} days").format(days=w),
                         str(f.regular.get(w, 0)), f"regular-{w}"))
    rows += [
        _row(_("Inactive mailboxes"), str(f.inactive), "inactive"),
        _row(_("Initial passwords unchanged past the deadline"), str(f.initial_overdue),
             "initial-overdue"),
        _row(_("Locked mailboxes"), str(f.locked), "locked"),
        _row(_("Mailboxes without figures in the snapshot"), str(f.no_data), "no-data"),
    ]
    if f.working_days is not None:
        rows.append(_row(_("Unit mailbox read on working days"),
                         f"{f.unit_mailbox_read_days}/{f.working_days}", "unit-read"))
    if f.published is not None:
        rows.append(_row(_("Directory published"), _("yes") if f.published else _("no"),
                         "published"))
    return "<table>" + "".join(rows) + "</table>"


def _charts(ev: Evaluation, before: Evaluation | None, units: list[Figures], opts: Options,
            _: Callable[[str], str]) -> list[str]:
    w = ev.window
    names = _bucket_names(_)
    charts = []
    if not opts.unit:
        adoption = [Bar(_label(f, opts.lang), round((f.adoption or 0) * 100, 1),
                        _pct(f.adoption)) for f in units if f.adoption is not None]
        charts.append(bar_chart("chart-adoption", _("Staff with a mailbox, % of headcount"),
                                adoption, 100))
        activity = [Bar(_label(f, opts.lang), round((f.regular_share(w) or 0) * 100, 1),
                        _pct(f.regular_share(w))) for f in units]
        charts.append(bar_chart("chart-activity",
                                _("Regular users, % (last {days} days)").format(days=w),
                                activity, 100))
        subject = ev.ministry
    else:
        subject = units[0]
        per_window = [Bar(_("{days} days").format(days=d), subject.regular.get(d, 0),
                          str(subject.regular.get(d, 0))) for d in WINDOWS]
        charts.append(bar_chart("chart-activity", _("Regular users per window"), per_window,
                                max(subject.mailboxes, 1)))
    storage = [Bar(names[b], subject.buckets[b], str(subject.buckets[b])) for b in BUCKETS]
    charts.append(bar_chart("chart-storage", _("Mailboxes by storage used against quota"),
                            storage, max(subject.mailboxes, 1)))
    if before is not None:
        old = {f.id: f for f in before.units}
        now_bars, old_bars = [], []
        for f in units:
            prev = old.get(f.id)
            now_bars.append(Bar(_label(f, opts.lang), f.regular.get(w, 0),
                                str(f.regular.get(w, 0))))
            old_bars.append(Bar(_label(f, opts.lang),
                                0 if prev is None else prev.regular.get(w, 0),
                                "–" if prev is None else str(prev.regular.get(w, 0))))
        top = max([b.value for b in now_bars + old_bars] + [1])
        charts.append(bar_chart("chart-trend-before",
                                _("Regular users at the previous snapshot ({day})").format(
                                    day=before.snapshot_day), old_bars, top, "before"))
        charts.append(bar_chart("chart-trend-now",
                                _("Regular users now ({day})").format(day=ev.snapshot_day),
                                now_bars, top))
    return charts


def _units_table(ev: Evaluation, before: Evaluation | None, units: list[Figures],
                 opts: Options, _: Callable[[str], str]) -> str:
    w = ev.window
    old = {f.id: f for f in before.units} if before else {}
    head = [_("Rank"), _("Unit"), _("Headcount"), _("Staff with a mailbox"), "%",
            _("Regular users"), "%", _("Change"), _("Inactive"),
            _("Near or over quota"), _("Initial passwords overdue"),
            _("Unit mailbox read"), _("Directory published")]
    rows = ["<table id=\"units\"><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head)
            + "</tr>"]
    for f in sorted(units, key=lambda f: (f.rank is None, f.rank or 0, f.id)):
        near = f.buckets["warning"] + f.buckets["cant_send"] + f.buckets["cant_send_receive"]
        cells = ["–" if f.rank is None else str(f.rank), _label(f, opts.lang),
                 "–" if f.headcount is None else str(f.headcount), str(f.mailboxes),
                 percent(f.adoption), str(f.regular.get(w, 0)), percent(f.regular_share(w)),
                 _trend(f, old.get(f.id), w) if before else "–", str(f.inactive), str(near),
                 str(f.initial_overdue), f"{f.unit_mailbox_read_days}/{f.working_days}",
                 _("yes") if f.published else _("no")]
        rows.append(f'<tr data-unit="{escape(f.id)}">' + "".join(
            ("<td>" if i == 1 else '<td class="n">') + f"{escape(c)}</td>"
            for i, c in enumerate(cells)) + "</tr>")
    rows.append("</table>")
    return "".join(rows)


def _people_table(f: Figures, opts: Options, _: Callable[[str], str]) -> str:
    head = [_("Name"), _("Address"), _("Last login"), _("Sent"), _("Received"),
            _("Regular user"), _("Inactive"), _("Storage (MiB)"), _("Quota (MiB)"),
            _("Initial password overdue"), _("Locked")]
    rows = ["<table id=\"people\"><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head)
            + "</tr>"]
    yes, no = _("yes"), _("no")
    for name, address, p in _people(f, opts.conceal):
        cells = [name, address, "–" if p.last_login is None else str(p.last_login),
                 str(p.sent), str(p.received), yes if p.regular else no,
                 yes if p.inactive else no,
                 "–" if p.storage_mib is None else f"{p.storage_mib:g}", str(p.quota_mib),
                 yes if p.initial_overdue else no, yes if p.locked else no]
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    rows.append("</table>")
    return "".join(rows)


# --------------------------------------------------------------------------- CSV, Markdown

CSV_UNIT_FIELDS = (
    "unit", "name", "headcount", "mailboxes", "adoption_pct",
    *(f"regular_{w}d" for w in WINDOWS), "regular_pct", "inactive",
    *(f"quota_{b}" for b in BUCKETS), "initial_password_overdue", "locked",
    "unit_mailbox_read_days", "working_days", "directory_published", "rank")
CSV_PERSON_FIELDS = ("name", "address", "last_login", "sent", "received", "regular",
                     "inactive", "quota_bucket", "storage_mib", "quota_mib",
                     "initial_password_overdue", "locked")


def _unit_row(f: Figures, w: int, lang: str) -> list[str]:
    return [f.id or "*", csv_text(_label(f, lang)),
            "" if f.headcount is None else str(f.headcount),
            str(f.mailboxes), "" if f.adoption is None else percent(f.adoption),
            *(str(f.regular.get(x, 0)) for x in WINDOWS),
            "" if f.regular_share(w) is None else percent(f.regular_share(w)),
            str(f.inactive), *(str(f.buckets[b]) for b in BUCKETS), str(f.initial_overdue),
            str(f.locked),
            "" if f.unit_mailbox_read_days is None else str(f.unit_mailbox_read_days),
            "" if f.working_days is None else str(f.working_days),
            "" if f.published is None else ("yes" if f.published else "no"),
            "" if f.rank is None else str(f.rank)]


def render_csv(ev: Evaluation, opts: Options) -> str:
    """The yearly submission: one row per unit, then the ministry ("*"); with --unit, the
    unit's row and then its mailboxes (names concealable)."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\r\n")  # RFC 4180
    out.writerow(CSV_UNIT_FIELDS)
    for f in _selected(ev, opts):
        out.writerow(_unit_row(f, ev.window, opts.lang))
    if not opts.unit:
        out.writerow(_unit_row(ev.ministry, ev.window, opts.lang))
        return buf.getvalue()
    out.writerow([])
    out.writerow(CSV_PERSON_FIELDS)
    for name, address, p in _people(ev.unit(opts.unit), opts.conceal):
        out.writerow([csv_text(name), address,
                      "" if p.last_login is None else str(p.last_login),
                      p.sent, p.received, "yes" if p.regular else "no",
                      "yes" if p.inactive else "no", p.bucket,
                      "" if p.storage_mib is None else f"{p.storage_mib:g}", p.quota_mib,
                      "yes" if p.initial_overdue else "no", "yes" if p.locked else "no"])
    return buf.getvalue()


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(ev: Evaluation, before: Evaluation | None, opts: Options) -> str:
    _ = translator(opts.lang).gettext
    w = ev.window
    units = _selected(ev, opts)
    subject = units[0] if opts.unit else ev.ministry
    old = {f.id: f for f in before.units} if before else {}
    title, t_snapshot, t_window, t_days = (_("Official e-mail usage: evaluation report"),
                                           _("Snapshot of"), _("window"), _("days"))
    t_compared, t_gaps = _("compared with the snapshot of"), _("Not collected:")
    head = [_("Rank"), _("Unit"), _("Staff with a mailbox"), "%", _("Regular users"), "%",
            _("Change"), _("Inactive"), _("Initial passwords overdue")]
    lines = [f"# {title}: {_md(_label(subject, opts.lang))}", "",
             f"{t_snapshot} {ev.snapshot_day}; {t_window} {w} {t_days}"
             + (f"; {t_compared} {before.snapshot_day}" if before else ""), ""]
    if ev.gaps:
        lines += [f"**{t_gaps}** " + "; ".join(_md(g) for g in ev.gaps), ""]
    lines += ["| " + " | ".join(head) + " |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for f in sorted(units, key=lambda f: (f.rank is None, f.rank or 0, f.id)):
        hc = "" if f.headcount is None else f"/{f.headcount}"
        lines.append(f"| {'–' if f.rank is None else f.rank} | {_md(_label(f, opts.lang))} | "
                     f"{f.mailboxes}{hc} | {percent(f.adoption)} | {f.regular.get(w, 0)} | "
                     f"{percent(f.regular_share(w))} | "
                     f"{_trend(f, old.get(f.id), w) if before else '–'} | {f.inactive} | "
                     f"{f.initial_overdue} |")
    if opts.unit:
        t_people = _("Mailboxes of the unit")
        phead = [_("Name"), _("Address"), _("Last login"), _("Sent"), _("Regular user"),
                 _("Inactive")]
        lines += ["", f"## {t_people}", "", "| " + " | ".join(phead) + " |",
                  "|---|---|---|---:|---|---|"]
        yes, no = _("yes"), _("no")
        for name, address, p in _people(subject, opts.conceal):
            lines.append(f"| {_md(name)} | {_md(address)} | "
                         f"{'–' if p.last_login is None else p.last_login} | {p.sent} | "
                         f"{yes if p.regular else no} | {yes if p.inactive else no} |")
    return "\n".join(lines) + "\n"
