"""The report's document: blocks (headings, text, lists, tables, images) written out as
Markdown or as one self-contained HTML page, and how figures are formatted in them.

The run report (:mod:`edgetestbed.analysis.report`), its network-cost sections
(:mod:`edgetestbed.analysis.costreport`) and ``compare`` (:mod:`edgetestbed.analysis.compare`)
build documents from these.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence

HTML_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em;
text-align:left}th{background:#f3f3f3}img{max-width:100%;display:block;margin:.5em 0 1.5em}
.answer{background:#f4f8fb;border-left:4px solid #3182bd;padding:.5em 1em}code{background:#f3f3f3;padding:0 .2em}"""


# ---------------------------------------------------------------- a tiny document model

@dataclass(frozen=True)
class Block:
    """One piece of the report: ``heading`` (text, level), ``text``, ``items`` (a list),
    ``table`` (header row, rows) or ``image`` (path relative to the run directory, caption)."""

    kind: str
    content: Any
    extra: Any = None


def heading(text: str, level: int = 2) -> Block:
    return Block("heading", text, level)


def text(content: str) -> Block:
    return Block("text", content)


def items(lines: Sequence[str], css_class: Optional[str] = None) -> Block:
    return Block("items", list(lines), css_class)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Block:
    return Block("table", [list(header), *[["–" if cell is None else str(cell) for cell in row] for row in rows]])


def image(path: Optional[Path], run_dir: Path, caption: str) -> List[Block]:
    return [] if path is None else [Block("image", path.relative_to(run_dir).as_posix(), caption)]


def to_markdown(blocks: Sequence[Block]) -> str:
    """The document as Markdown, images linked."""
    out: List[str] = []
    for block in blocks:
        if block.kind == "heading":
            out.append(f"{'#' * block.extra} {block.content}")
        elif block.kind == "text":
            out.append(block.content)
        elif block.kind == "items":
            out.append("\n".join(f"- {line}" for line in block.content))
        elif block.kind == "table":
            header, *rows = block.content
            out.append("\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                                  *["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
                                    for row in rows]]))
        else:
            out.append(f"![{block.extra}]({block.content})")
    return "\n\n".join(out) + "\n"


def to_html(blocks: Sequence[Block], run_dir: Path, title: str) -> str:
    """The document as one HTML page, images embedded as data URIs."""
    body = [_html_block(block, run_dir) for block in blocks]
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{HTML_STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


def _html_block(block: Block, run_dir: Path) -> str:
    escape = html.escape
    if block.kind == "heading":
        return f"<h{block.extra}>{escape(block.content)}</h{block.extra}>"
    if block.kind == "text":
        return f"<p>{escape(block.content)}</p>"
    if block.kind == "items":
        css = f' class="{block.extra}"' if block.extra else ""
        return f"<ul{css}>" + "".join(f"<li>{escape(line)}</li>" for line in block.content) + "</ul>"
    if block.kind == "table":
        header, *rows = block.content
        return (f"<table><tr>{_cells(header, 'th')}</tr>" + "".join(f"<tr>{_cells(row, 'td')}</tr>" for row in rows)
                + "</table>")
    data = base64.b64encode((run_dir / block.content).read_bytes()).decode("ascii")
    return f'<figure><img alt="{escape(block.extra)}" src="data:image/png;base64,{data}"></figure>'


def _cells(row: Sequence[str], tag: str) -> str:
    return "".join(f"<{tag}>{html.escape(cell)}</{tag}>" for cell in row)


# ---------------------------------------------------------------- formatting

def percent(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def seconds(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.2f} s"


def score(value: Optional[float], metric: Optional[str]) -> str:
    """A value of the run's metric: accuracy in percent, RMSE in µg/m³."""
    if value is None or metric != "rmse":
        return percent(value)
    return f"{value:.2f} µg/m³"


def lag_text(value: Optional[float], metric: Optional[str]) -> str:
    """A lag behind the cloud: accuracy points, or µg/m³ of RMSE."""
    if value is None:
        return "–"
    return f"{value:+.2f} µg/m³" if metric == "rmse" else f"{100 * value:+.1f} points"
