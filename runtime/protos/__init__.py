"""Generated gRPC stubs of the original runtime's `pixell.agent.AgentService` (scripts/protos.sh)."""
