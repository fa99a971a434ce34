"""`POST /invoke` answers with the events received so far."""

from src.inbox import RECEIVED


def handler(context):
    return {"received": list(RECEIVED)}
