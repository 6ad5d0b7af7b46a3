"""Make docs/card.png: the real card's Block Kit, drawn as HTML in Slack's style, screenshotted.

    apt-get install chromium fonts-noto-color-emoji   # once: headless Chromium, and emoji
    python docs/make_card_image.py  # writes docs/card.png, prints the card as text

The card is the bot's own rendering (`render_execution`) of an errored run; only the drawing of Block
Kit (fonts, colours, spacing) is approximated here.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.refold.models import Execution  # noqa: E402
from bot.render.blocks import render_execution  # noqa: E402
from bot.render.terminal import execution_summary  # noqa: E402

EXAMPLE = {
    "name": "Export contact to HubSpot",
    "org_id": "6500a1b2c3d4e5f6a7b8c9d0",
    "environment": "production",
    "status": "ERRORED",
    "completion_percentage": 60,
    "config_id": "cfg_42",
    "linked_account_id": "acme@example.com",
    "nodes": [
        {"node_id": "1", "node_name": "Start", "node_type": "start", "node_status": "Success",
         "is_batch": False, "attempts_made": 1, "execution_time": 403, "latest_output": {"ok": True}},
        {"node_id": "2", "node_name": "Fetch contact", "node_type": "action", "node_status": "Success",
         "is_batch": False, "attempts_made": 1, "execution_time": 820, "latest_output": {"id": 8812}},
        {"node_id": "3", "node_name": "Create contact", "node_type": "hubspot", "node_status": "Errored",
         "is_batch": False, "attempts_made": 3, "execution_time": 2140,
         "latest_output": {"error": "401 Unauthorized", "detail": "HubSpot token expired"}},
        {"node_id": "4", "node_name": "Notify owner", "node_type": "slack", "node_status": "Waiting",
         "is_batch": False, "attempts_made": 0, "execution_time": 0, "latest_output": None},
    ],
}
EMOJI = {
    ":x:": "❌", ":hourglass_flowing_sand:": "⏳", ":white_check_mark:": "✅", ":warning:": "⚠️",
    ":rotating_light:": "🚨", ":black_square_for_stop:": "⏹️", ":no_entry:": "⛔",
}
STYLE = """
body { margin: 0; background: #fff; font: 15px/1.46668 -apple-system, 'Segoe UI', Lato, 'Noto Sans', sans-serif;
       color: #1d1c1d; }
.msg { display: flex; padding: 16px 20px; width: 720px; }
.avatar { width: 36px; height: 36px; border-radius: 6px; background: #1d3557; color: #fff; font-weight: 700;
          display: flex; align-items: center; justify-content: center; margin-right: 8px; flex: none; }
.name { font-weight: 900; } .app { background: #e8e8e8; color: #616061; font-size: 10px; padding: 1px 3px;
        border-radius: 2px; margin-left: 4px; font-weight: 700; } .time { color: #616061; font-size: 12px; margin-left: 6px; }
.header { font-size: 18px; font-weight: 900; margin: 6px 0 4px; }
.context { color: #616061; font-size: 12px; margin: 4px 0; } .context span + span::before { content: "  ·  "; }
.section { margin: 6px 0; white-space: pre-wrap; }
.divider { border-top: 1px solid #dddddd; margin: 10px 0; }
code { font: 12px Monaco, Menlo, Consolas, monospace; color: #e01e5a; background: #f8f8f8;
       border: 1px solid #e8e8e8; border-radius: 3px; padding: 0 3px; }
pre { font: 12px/1.5 Monaco, Menlo, Consolas, monospace; background: #f8f8f8; border: 1px solid #e8e8e8;
      border-radius: 4px; padding: 8px; margin: 4px 0; white-space: pre-wrap; }
.actions { margin-top: 8px; } .button { display: inline-block; border: 1px solid #bbbabb; border-radius: 4px;
       padding: 3px 12px; font-weight: 700; font-size: 13px; margin-right: 8px; }
.button.primary { background: #007a5a; color: #fff; border-color: #007a5a; }
.row { display: flex; align-items: flex-start; } .row .section { flex: 1; min-width: 0; }
.side { flex: none; margin: 6px 0 0 12px; }
.select { display: inline-block; border: 1px solid #bbbabb; border-radius: 4px; padding: 3px 10px;
          font-size: 13px; color: #616061; }
"""


def mrkdwn(text: str) -> str:
    """Slack mrkdwn -> HTML, enough for the card: code blocks, code, bold, italics, emoji."""
    for code, char in EMOJI.items():
        text = text.replace(code, char)
    parts = re.split(r"```(.*?)```", text, flags=re.S)
    out = []
    for index, part in enumerate(parts):
        if index % 2:
            out.append(f"<pre>{html.escape(html.unescape(part.strip()))}</pre>")
            continue
        escaped = html.escape(html.unescape(part))
        escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
        escaped = re.sub(r"\*([^*\n]+)\*", r"<b>\1</b>", escaped)
        escaped = re.sub(r"(?<![\w])_([^_\n]+)_(?![\w])", r"<i>\1</i>", escaped)
        out.append(escaped)
    return "".join(out)


def block_html(block: dict[str, Any]) -> str:
    kind = block["type"]
    if kind == "header":
        return f'<div class="header">{mrkdwn(block["text"]["text"])}</div>'
    if kind == "context":
        items = "".join(f"<span>{mrkdwn(e.get('text', ''))}</span>" for e in block["elements"])
        return f'<div class="context">{items}</div>'
    if kind == "section":
        accessory = block.get("accessory") or {}
        side = ""
        if accessory.get("type") == "button":
            side = f'<span class="button">{html.escape(accessory["text"]["text"])}</span>'
        elif accessory.get("type") == "static_select":
            side = f'<span class="select">{html.escape(accessory["placeholder"]["text"])} ▾</span>'
        return (
            f'<div class="row"><div class="section">{mrkdwn(block["text"]["text"])}</div>'
            f'<div class="side">{side}</div></div>'
        )
    if kind == "divider":
        return '<div class="divider"></div>'
    if kind == "actions":
        buttons = "".join(
            f'<span class="button {e.get("style", "")}">{html.escape(e["text"]["text"])}</span>'
            for e in block["elements"]
        )
        return f'<div class="actions">{buttons}</div>'
    return ""


def main() -> None:
    execution = Execution.model_validate({**EXAMPLE, "_id": "65410cf6cdf931a12d7ab009"})
    if execution.id is None:
        execution = execution.model_copy(update={"id": "65410cf6cdf931a12d7ab009"})
    now = datetime(2026, 11, 23, 9, 41, tzinfo=UTC)
    card = render_execution(execution, now=now, linked_account_id="acme@example.com", shareable=True)
    body = "".join(block_html(b) for b in card.blocks)
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><style>{STYLE}</style></head><body>"
        "<div class='msg'><div class='avatar'>R</div><div><span class='name'>Refold Executions</span>"
        f"<span class='app'>APP</span><span class='time'>9:41 AM</span>{body}</div></div></body></html>"
    )
    out_html = Path(tempfile.mkdtemp()) / "card.html"
    out_html.write_text(page)
    print(execution_summary(execution))
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("chromium is not installed: apt-get install chromium")
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={ROOT / 'docs' / 'card.png'}", "--window-size=760,520", out_html.as_uri()],
        check=True,
        capture_output=True,
    )


if __name__ == "__main__":
    main()
