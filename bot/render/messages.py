"""Fixed Slack texts: usage and notes. Pure."""

from __future__ import annotations

from bot.render.text import plural

USAGE = (
    "*Look up a Refold execution*\n"
    "• `/execution <execution_id> [linked_account_id]`: show a run (IDs are 24 hex characters)\n"
    "• `/execution <execution_id> follow`: show a run and update the card until it ends\n"
    "• `/execution search [account:<linked account>] [status:errored|running|completed|stopped|timed_out] "
    "[workflow:<name or id>] [since:30m|2h|1d|7d] [source:event|schedule|api]`: find runs (only you see "
    "the answer)\n"
    "• `/execution following`: the runs being followed in this workspace\n"
    "• `/execution incidents`: the open incidents (failures of one cause gathered in a channel)\n"
    "• `/execution status`: show this workspace's Refold connection and its last 5 actions\n"
    "• `/execution connect`: connect Refold credentials (workspace admins)\n"
    "• `/execution disconnect`: remove them (workspace admins)\n"
    "• `/execution alerts on|off|list`: Refold alerts in this channel as live cards (workspace admins; "
    "`/execution alerts` for the filters and snoozes)\n"
    "• `/execution digest on [at 09:00] [tz:Europe/Berlin] [quiet:skip]`: a daily digest of this channel's "
    "alerts (`/execution digest off` stops it)\n"
    "• `/execution help`: this message\n"
    "You can also open an alert's `⋯` menu and choose *Look up execution*."
)

ADMIN_ONLY = ":lock: Only workspace admins and owners can change the Refold connection. Ask one of them."
DAMAGED_BUTTON = (
    ":warning: That button no longer carries a valid execution. Run `/execution <execution_id>` again."
)
NO_EXECUTION_IN_MESSAGE = (
    ":mag: No execution ID found in that message. Execution IDs are 24 hex characters; "
    "you can also type `/execution <execution_id>`."
)
NOT_INSTALLED = (
    ":electric_plug: Refold Executions is not installed in this workspace (any more). "
    "An admin can install it again from the bot's `/slack/install` page."
)
CONNECT_FORM_FAILED = ":warning: Slack would not open the connect form. Run `/execution connect` again."
KEPT_CONNECTION = "Kept the Refold connection."
DISCONNECTED = ":wave: Refold is disconnected from this workspace."
NOTHING_TO_DISCONNECT = "This workspace had no Refold connection of its own."
DISCONNECT_ADMIN_ONLY = ":lock: Only workspace admins and owners can disconnect Refold."


def more_executions(left: int, shown: int) -> str:
    return (
        f"That message names {plural(left, 'more execution')} than the {shown} shown; "
        "look them up with `/execution <execution_id>`."
    )


def refresh_failed_note(at: str, reason: str) -> str:
    return f"Refresh failed at {at} UTC: {reason}"[:1900]


def failed_for(execution_id: str, reason: str) -> str:
    return f"`{execution_id}`: {reason}"


def lookup_waiting(execution_id: str, ahead: int | None, *, with_refold: bool) -> str:
    """The placeholder a slow lookup shows until its card replaces it. `ahead`: its place in the
    workspace's line at the Refold rate limit; `with_refold`: Refold has the request."""
    if ahead is None and with_refold:
        why = "Refold is taking longer than usual to answer."
    elif ahead is None:
        # Waiting on the bot's own storage, or on another lookup of the same execution.
        why = "This is taking longer than usual."
    elif ahead == 0:
        why = "It is next in line for this workspace's Refold rate limit."
    else:
        why = (
            f"It is queued behind {plural(ahead, 'other request')} for this workspace's Refold "
            "rate limit (Refold allows 20 a second)."
        )
    return f":hourglass_flowing_sand: Looking up `{execution_id}`… {why} The card will replace this message."
