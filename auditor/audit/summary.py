"""What one audit run did, as the pipeline reports it to the CLI, the schedule and the reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from auditor.vocabulary import RunStatus


@dataclass
class RunSummary:
    """What one audit run did: ``status`` is ``succeeded``, ``failed`` or ``refused`` (another
    run of the store-night was going on)."""

    store_id: str
    business_date: date
    status: str
    run_id: int | None = None
    sales_audited: int = 0
    flags: dict[str, int] = field(default_factory=dict)
    flagged_sales: int = 0
    seconds: float = 0.0
    error: str | None = None

    def __str__(self) -> str:
        head = f"{self.store_id} {self.business_date}"
        if self.status != RunStatus.SUCCEEDED:
            return f"{head}: {self.status}: {self.error}"
        kinds = ", ".join(f"{kind} {n}" for kind, n in self.flags.items())
        return (
            f"{head}: {self.sales_audited} alcohol sales, {self.flagged_sales} flagged"
            + (f" ({kinds})" if kinds else "")
            + f" in {self.seconds:.1f} s"
        )
