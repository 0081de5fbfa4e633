"""``sealdrop housekeeping DIR [--dry-run]``: what the retention rules delete today, per rule.

Without ``--dry-run`` it runs one round of the housekeeping that ``serve`` does on its own
(expired sessions and tokens, sources that never sent anything, and retention), for an instance
whose server is stopped, or to see the counts at once. With it, nothing is changed: it lists how
many items each rule would delete today, which the real run on the same UTC day deletes exactly
(the jitter is a keyed hash of each item's id, not a random draw per run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sealdrop.cli.common import fail, open_services, print_table, whole_table
from sealdrop.errors import SealdropError
from sealdrop.services.container import Services
from sealdrop.services.retention import Outcome, Plan, Rules

InstanceDir = Annotated[Path, typer.Argument(help="The instance folder.")]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Only count what the retention rules would delete today.")
]


def _days(value: int) -> str:
    return f"{value} days" if value else "off"


def _plural(count: int, noun: str, nouns: str = "") -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {nouns or noun + 's'}"


def _show(out: Console, rules: Rules, counts: Outcome, plan: Plan, verb: str) -> None:
    table = whole_table("rule", "setting", verb)
    table.add_row(
        "retention.submissions_days",
        _days(rules.submissions_days),
        _plural(counts.submissions, "submission"),
    )
    table.add_row(
        "retention.replies_days",
        _days(rules.replies_days),
        _plural(counts.replies, "reply", "replies"),
    )
    table.add_row(
        "retention.idle_source_days",
        _days(rules.idle_source_days),
        _plural(counts.sources, "source") + (" (with all they hold)" if counts.sources else ""),
    )
    print_table(table)
    out.print(
        f"Exempt: {_plural(plan.held, 'source')} on hold; "
        f"{_plural(plan.undated, 'item')} stored without a day. "
        + (
            f"Jitter: up to {_plural(rules.jitter_days, 'day')} after the due day."
            if rules.jitter_days
            else "No jitter."
        )
    )


def housekeeping(directory: InstanceDir, dry_run: DryRun = False) -> None:
    """Apply the retention rules once (and the rest of the server's housekeeping), or with
    --dry-run count per rule what they would delete today."""
    out = Console(highlight=False)
    services = open_services(directory)
    try:
        _housekeeping(services, out, dry_run)
    except SealdropError as exc:
        raise fail(exc) from None
    finally:
        services.close()


def _housekeeping(services: Services, out: Console, dry_run: bool) -> None:
    retention = services.retention
    rules = retention.rules
    plan = retention.plan()
    if dry_run:
        out.print(f"Retention on {plan.day} (UTC), dry run: nothing is deleted.")
        if not rules.any:
            out.print(
                "No retention rule is on (\\[retention] in sealdrop.toml): nothing to delete."
            )
            return
        counts = Outcome(plan.submission_count, plan.reply_count, len(plan.sources))
        _show(out, rules, counts, plan, "would delete today")
        return
    services.auth.purge_expired()
    sessions = services.sessions.purge_expired()
    pending = services.sources.purge_pending()
    out.print(
        f"Deleted {_plural(sessions, 'expired session')} and "
        f"{_plural(pending, 'source')} that never sent anything."
    )
    if not rules.any:
        out.print("No retention rule is on (\\[retention] in sealdrop.toml).")
        return
    # The same rules and day as the plan above; what changed in between (a hold just set, an
    # item a journalist deleted) is checked again while deleting, so the counts are the run's.
    outcome = retention.run()
    out.print(f"Retention on {plan.day} (UTC):")
    _show(out, rules, outcome, plan, "deleted")
