"""A2A server (stub, as `pixell init` writes it)."""


def serve():
    return None
