"""Threshold analytics for analysts (and loss prevention, admins): figures only, never a face."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template, request
from markupsafe import Markup

from auditor.db.models import Store
from auditor.threshold.chart import threshold_chart
from auditor.threshold.figures import DEFAULT_NIGHTS, build_report
from auditor.threshold.inputs import load_inputs, read_model_card
from auditor.web.access import Right
from auditor.web.auth import requires
from auditor.web.state import db, int_arg, state

bp = Blueprint("analytics", __name__)

MAX_NIGHTS = 366


@bp.get("/analytics/threshold")
@requires(Right.ANALYSE)
def threshold() -> str:
    settings = state().settings
    nights = int_arg("nights", DEFAULT_NIGHTS, low=1, high=MAX_NIGHTS)
    stores = list(db().execute(sa.select(Store.id, Store.name).order_by(Store.id)).all())
    store = request.args.get("store", "")
    store = store if store in {s.id for s in stores} else ""
    inputs = load_inputs(db(), nights=nights, store_ids=[store] if store else [])
    report = build_report(
        inputs,
        configured=settings.rules(store).age_threshold if store else settings.audit.age_threshold,
        card=read_model_card(settings.model_path),
    )
    svg = threshold_chart(report) if inputs.nights else None
    return render_template(
        "review/threshold.html",
        report=report,
        chart=Markup(svg) if svg else None,
        nights=nights,
        store=store,
        stores=stores,
    )
