"""The gRPC variant of an agent's Knative Service, for callers of the original runtime's
`pixell.agent.AgentService` (`par manifests PATH.apkg --grpc`).

A Knative Service exposes one port. The agent's own Service speaks HTTP/1.1 on it (the runtime's
HTTP surfaces); the variant is a second Service, `{agent}-grpc`, whose port is named `h2c`
(HTTP/2 cleartext end to end, what gRPC needs) and is the runtime's gRPC server: A2A_PORT is set
to that port, which Knative also passes as PORT, so the runtime serves gRPC there and its HTTP on
8080 inside the pod (unrouted). Same image, package, env and scaling (from zero too); the
readiness probe is a TCP connect, as the port opens once the package is loaded. A caller dials
`{agent}-grpc.{namespace}.{domain}:80` (or 443 with TLS at the ingress).
"""

from __future__ import annotations

from registry.knative import manifests
from registry.knative.naming import revision_name
from registry.spec import DeploymentSpec

GRPC_PORT = 50051  # the original runtime's A2A_PORT default
SUFFIX = "-grpc"


def grpc_service(spec: DeploymentSpec, options: manifests.ManifestOptions | None = None) -> manifests.Obj:
    obj = manifests.service(spec, options or manifests.ManifestOptions())
    name = spec.agent + SUFFIX
    obj["metadata"]["name"] = name
    obj["metadata"]["labels"]["par.pixell.ai/protocol"] = "grpc"
    # `{agent}-{tail}` -> `{agent}-grpc-{tail}`: Knative wants the Service name as the prefix.
    renamed = {v.revision: revision_name(name, v.revision[len(spec.agent) + 1 :]) for v in spec.versions}
    template = obj["spec"]["template"]
    template["metadata"]["name"] = renamed[template["metadata"]["name"]]
    for route in obj["spec"]["traffic"]:
        route["revisionName"] = renamed[route["revisionName"]]
    container = template["spec"]["containers"][0]
    container["ports"] = [{"name": "h2c", "containerPort": GRPC_PORT, "protocol": "TCP"}]
    container["env"].append({"name": "A2A_PORT", "value": str(GRPC_PORT)})
    probe = container["readinessProbe"]
    del probe["httpGet"]
    probe["tcpSocket"] = {"port": GRPC_PORT}
    return obj
