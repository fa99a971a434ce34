"""A conversation that stays open, for the A2A TCK (tests/integration/runtime/test_a2a_tck.py).

Every message starts (or continues) work that takes a moment: `message/send` answers at once with
the task `working`, and a second later the task waits for input (`input-required`), so the client
may continue it or cancel it. "done" (or "bye") completes it.
"""

import asyncio

from runtime.sdk import input_required, keep_working

WORK_SECONDS = 1.0
CLOSING = {"done", "bye", "goodbye"}


def handler(context):
    text = str(context.get("text", "")) if isinstance(context, dict) else ""
    if text.strip().lower() in CLOSING:
        return "Goodbye!"

    async def then():
        await asyncio.sleep(WORK_SECONDS)
        return input_required(f"You said {text!r}. Anything else? Say 'done' to finish.")

    return keep_working(then, "Working on it.")
