"""What this instance received, newest last (in memory: an instance scaled to zero forgets)."""

import json
import os
import sys
import time

_KEEP = int(os.environ.get("RECEIVER_KEEP", "100"))
RECEIVED = []


def record(data):
    entry = {"data": data, "received_at": time.time()}
    RECEIVED.append(entry)
    del RECEIVED[:-_KEEP]
    print(json.dumps({"msg": "event received", **entry}), file=sys.stderr, flush=True)
    return entry
