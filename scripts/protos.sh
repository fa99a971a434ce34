#!/usr/bin/env bash
# Regenerate the committed gRPC stubs of runtime/protos/*.proto (grpcio-tools, a dev dependency).
# tests/unit/runtime/test_grpc_stubs.py fails when the committed stubs differ from a fresh run.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.}
.venv/bin/python -m grpc_tools.protoc -I . --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  runtime/protos/agent.proto
