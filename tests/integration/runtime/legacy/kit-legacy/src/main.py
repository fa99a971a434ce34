"""Entrypoint: echoes its context."""


def handler(context):
    return {"handled": context}
