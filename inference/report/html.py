"""The report page: plain HTML with inline CSS, no script or style from anywhere else, so it
opens from disk, offline, in any browser and can be mailed as a folder."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       margin: 24px auto; max-width: 1400px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 26px 0 8px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta { color: #666; margin: 0 0 12px; } .meta code { color: #444; }
.cards { display: flex; flex-wrap: wrap; gap: 28px; align-items: flex-start; }
.cards > section h2 { margin-top: 8px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 3px 10px 3px 0; text-align: left;
         vertical-align: top; }
th { font-weight: 600; color: #444; } td.num { text-align: right; }
.warn { background: #fff4e5; border-left: 4px solid #f0a020; padding: 6px 10px; }
.note { color: #666; font-size: 13px; }
img.wide { max-width: 100%; border: 1px solid #eee; }
img.crop { border: 1px solid #ccc; margin-right: 4px; image-rendering: pixelated; }
"""

#: Marks every image that loaded on the <body> (a headless browser's DOM dump shows it).
_SCRIPT = """
window.addEventListener("load", () => {
  const ok = [...document.images].filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.imagesLoaded = ok + "/" + document.images.length;
});
"""


def table(rows: Iterable[Sequence[object]], header: Sequence[str] = (), table_id: str = "") -> str:
    """An HTML table; numbers right-aligned, every cell escaped (pass `Raw` to keep HTML)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            number = isinstance(cell, int | float) and not isinstance(cell, bool)
            css = ' class="num"' if number else ""
            cells.append(f"<td{css}>{_cell(cell)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    ident = f' id="{escape(table_id)}"' if table_id else ""
    thead = f"<thead><tr>{head}</tr></thead>" if head else ""
    return f"<table{ident}>{thead}<tbody>{''.join(body)}</tbody></table>"


class Raw(str):
    """Text that is already HTML (an image, a link): put into a table as it is."""


def _cell(value: object) -> str:
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return escape(str(value))


def image(src: str, alt: str, css: str = "wide", image_id: str = "") -> Raw:
    """An <img> of a file in the report folder."""
    ident = f' id="{escape(image_id)}"' if image_id else ""
    return Raw(f'<img class="{css}"{ident} src="{escape(src)}" alt="{escape(alt)}">')


def section(title: str, *parts: str, level: int = 2) -> str:
    """A heading and its content."""
    return f"<section><h{level}>{escape(title)}</h{level}>{''.join(parts)}</section>"


def paragraph(text: str, css: str = "") -> str:
    """A paragraph of plain text."""
    cls = f' class="{css}"' if css else ""
    return f"<p{cls}>{escape(text)}</p>"


def page(title: str, meta: str, body: Sequence[str]) -> str:
    """The whole document."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n<body>"
        f'<h1>{escape(title)}</h1><p class="meta">{meta}</p>\n'
        + "\n".join(body)
        + f"\n<script>{_SCRIPT}</script></body></html>\n"
    )
