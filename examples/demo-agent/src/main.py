"""The demo agent's entrypoint: `POST /invoke` and CloudEvents land here."""


def handler(context):
    """Echo the context back (sync on purpose: the runtime runs it in a thread pool)."""
    return {"message": "Hello from handler", "received": context}
