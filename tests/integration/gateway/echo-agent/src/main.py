"""Entrypoint: echoes its context (the tests call the ASGI app in web.py instead)."""


def handler(context):
    return {"echo": context}
