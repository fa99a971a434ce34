def handler(context):
    return {"stub": True}
