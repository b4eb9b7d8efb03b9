"""The Jinja2 environment for the model's HTML pages; their templates ship with the package, in
``model/templates/`` (``base.html``, the layout, and one template per page)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("model", "templates"),
        autoescape=jinja2.select_autoescape(("html",)),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["num"] = lambda v, digits=2: "–" if v is None else f"{v:,.{digits}f}"
    env.filters["pct"] = lambda v, digits=1: "–" if v is None else f"{100 * v:.{digits}f}%"
    return env


def render(template: str, out: Path, **context) -> Path:
    out.write_text(environment().get_template(template).render(**context), encoding="utf-8")
    return out
