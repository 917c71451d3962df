"""The parts the run report's sections are made of (components/release/report_page.py, history_page.py): a plot as
an embedded PNG, a table, a paragraph; every text escaped. Plots are matplotlib's Agg backend, so no display is
needed and the page needs no network."""

from __future__ import annotations

import base64
import html
import io
from typing import List


def figure(draw, title: str, width: float = 6.4, height: float = 3.2) -> str:
    """An <img> of the plot `draw(ax)` makes, with `title`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    draw(ax)
    ax.set_title(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'


def table(header: List[str], rows: List[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"
