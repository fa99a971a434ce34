def handler(input_data):
    return {"result": f"Processed: {input_data}", "agent": "example-three-surface-agent"}
