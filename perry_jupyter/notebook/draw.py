"""The notebook face's drawing: the presenter's views as HTML, for `%perry` and the widgets.

Every text is escaped: what the server says is shown, never run as markup.
"""

from __future__ import annotations

import html as _html
import re
from typing import Any, Iterable

from ..present import Cell, Conversation, Diff, Fields, Message, Output, Part, Stack, Table, diff_line_style

COLORS = {"good": "#1a7f37", "warn": "#9a6700", "busy": "#0969da", "bad": "#cf222e", "error": "#cf222e",
          "muted": "#57606a"}
TONES = ("good", "warn", "busy", "bad")
ROLE_COLORS = {"user": "#1a7f37"}


def escape(value: Any) -> str:
    return _html.escape("" if value is None else str(value))


def cell(value: Any) -> str:
    if not isinstance(value, Cell):
        return escape(value)
    text = escape(value.text)
    if value.style == "strong":
        return f"<b>{text}</b>"
    if value.style == "code":
        return f"<code>{text}</code>"
    if value.style in TONES:
        return (f'<span class="perry-status perry-status-{text}" '
                f'style="color:{COLORS[value.style]};font-weight:600">{text}</span>')
    if value.style in COLORS:
        return f'<span style="color:{COLORS[value.style]}">{text}</span>'
    return text


def line(cells: Iterable[Any]) -> str:
    return "".join(cell(c) for c in cells)


def note(text: str) -> str:
    """A grey line; `backquoted` words are code."""
    marked = re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))
    return f'<div class="perry-note" style="color:{COLORS["muted"]}">{marked}</div>'


def html(view: Any) -> str:
    """The view as an HTML fragment."""
    if isinstance(view, Table):
        return _table(view)
    if isinstance(view, Fields):
        return _fields(view)
    if isinstance(view, Conversation):
        return _conversation(view)
    if isinstance(view, Output):
        return _output(view)
    if isinstance(view, Stack):
        return "".join(html(v) for v in view.views)
    if isinstance(view, Diff):
        return _diff(view)
    return f"<pre>{escape(view)}</pre>"


def _table(view: Table) -> str:
    if not view.rows:
        return note(view.empty)
    head = "".join(f'<th style="text-align:left">{escape(h)}</th>' for h in view.columns)
    body = "".join("<tr>" + "".join(f'<td style="text-align:left">{cell(c)}</td>' for c in row) + "</tr>"
                   for row in view.rows)
    return (f'<table class="perry-table perry-{escape(view.kind)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


DIFF_BACKGROUNDS = {"good": "#e6ffec", "bad": "#ffebe9", "busy": "#ddf4ff"}


def _diff(view: Diff) -> str:
    rows = []
    for text in view.text.splitlines():
        style = diff_line_style(text)
        colour = COLORS.get(style, "")
        css = (f"background:{DIFF_BACKGROUNDS[style]};" if style in DIFF_BACKGROUNDS else "") + \
            (f"color:{colour};" if colour else "") + ("font-weight:600;" if style == "strong" else "")
        rows.append(f'<div class="perry-diff-{style or "context"}" style="{css}">{escape(text) or " "}</div>')
    notes = "".join(f"<div>{line(n)}</div>" for n in view.notes)
    body = f'<pre class="perry-diff" style="white-space:pre;overflow-x:auto">{"".join(rows)}</pre>' if rows else ""
    return f'<div class="perry-diff-view">{body}{notes}</div>'


def _fields(view: Fields) -> str:
    out = f"<div>{line(view.title)}</div>" if view.title else ""
    if view.rows:
        body = "".join(f'<tr><th style="text-align:left">{escape(k)}</th><td style="text-align:left">{cell(v)}</td></tr>'
                       for k, v in view.rows)
        out += f'<table class="perry-table"><tbody>{body}</tbody></table>'
    out += "".join(f'<div style="white-space:pre-wrap">{line(n)}</div>' for n in view.notes)
    return f'<div class="perry-{escape(view.kind or "record")}">{out}</div>'


def _part(part: Part) -> str:
    if part.kind == "text":
        return f'<div style="white-space:pre-wrap">{escape(part.text)}</div>'
    if part.kind == "error":
        return f'<div style="white-space:pre-wrap;color:{COLORS["error"]}">{escape(part.text)}</div>'
    if part.kind == "reasoning":
        return f'<div style="white-space:pre-wrap;color:{COLORS["muted"]};font-style:italic">{escape(part.text)}</div>'
    if part.kind == "tool":
        return (f'<details class="perry-tool"><summary>{escape(part.title)}</summary>'
                f"<pre>{escape(part.text)}</pre></details>")
    return f'<div style="color:{COLORS["muted"]}">{escape(part.text)}</div>'


def message(view: Message) -> str:
    color = ROLE_COLORS.get(view.role, COLORS["busy"])
    return (f'<div class="perry-message perry-{escape(view.role)}" style="border-left:3px solid {color};'
            f'padding-left:8px;margin:6px 0"><div style="color:{color};font-weight:600">{escape(view.role)} '
            f'<span style="color:{COLORS["muted"]};font-weight:normal">{escape(view.time)}</span></div>'
            + "".join(_part(p) for p in view.parts) + "</div>")


def _conversation(view: Conversation) -> str:
    head = f"<div>{line(view.title)}</div>" if view.title else ""
    earlier = note(f"… {view.earlier} earlier messages") if view.earlier else ""
    return f'<div class="perry-conversation">{head}{earlier}' + "".join(message(m) for m in view.messages) + "</div>"


def _output(view: Output) -> str:
    out = f"<pre>{escape(view.stdout)}</pre>" if view.stdout else ""
    if view.stderr:
        out += f'<pre style="color:{COLORS["error"]}">{escape(view.stderr)}</pre>'
    if view.code is not None:
        out += f"<div>exit code {escape(view.code)} {cell(Cell('succeeded', 'good') if view.code == 0 else Cell('failed', 'bad'))}</div>"
    return f'<div class="perry-exec">{out}</div>'
