#!/usr/bin/env bash
# PAR on a local kind cluster, the way it runs on any Kubernetes: Knative Serving with Kourier
# (the PAR gateway as its ext_authz), Knative Eventing with the Kafka broker on Strimzi Kafka,
# and the PAR registry and gateway from knative/. Needs docker, kind (>= 0.27 for the node image
# below), kubectl, curl and internet.
#
#   scripts/kind-up.sh            # create (or complete) the cluster; safe to run again
#   KIND_CLUSTER=par scripts/kind-up.sh delete
#
# Every version is pinned below; override any of them from the environment.
set -euo pipefail

KIND_CLUSTER="${KIND_CLUSTER:-par}"
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-kindest/node:v1.32.2}"
KNATIVE_VERSION="${KNATIVE_VERSION:-1.18.0}"           # serving, net-kourier, eventing
KNATIVE_KAFKA_VERSION="${KNATIVE_KAFKA_VERSION:-1.18.0}" # eventing-kafka-broker
STRIMZI_VERSION="${STRIMZI_VERSION:-0.45.0}"
HTTP_PORT="${PAR_KIND_HTTP_PORT:-80}"                    # host port of Kourier's HTTP listener
DOMAIN="${PAR_KIND_DOMAIN:-127.0.0.1.sslip.io}"          # knative/gateway's PAR_GATEWAY_DOMAIN
PLATFORM_IMAGE="ghcr.io/pixell/par:0.1.0"                # knative/registry, knative/gateway
RUNTIME_IMAGE="ghcr.io/pixell/par-runtime:0.1.0"         # registry.settings runtime_image
WAIT="${PAR_KIND_WAIT:-600s}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVING="https://github.com/knative/serving/releases/download/knative-v${KNATIVE_VERSION}"
KOURIER="https://github.com/knative/net-kourier/releases/download/knative-v${KNATIVE_VERSION}"
EVENTING="https://github.com/knative/eventing/releases/download/knative-v${KNATIVE_VERSION}"
KAFKA_BROKER="https://github.com/knative-extensions/eventing-kafka-broker/releases/download/knative-v${KNATIVE_KAFKA_VERSION}"
STRIMZI="https://github.com/strimzi/strimzi-kafka-operator/releases/download/${STRIMZI_VERSION}/strimzi-cluster-operator-${STRIMZI_VERSION}.yaml"

STEP=0
START=$SECONDS
step() {
  STEP=$((STEP + 1))
  printf '\n==> [%d/12 +%ds] %s\n' "$STEP" "$((SECONDS - START))" "$*"
}
die() {
  echo "error: $*" >&2
  exit 1
}
available() { # namespace: every Deployment there Available (after they exist)
  kubectl -n "$1" wait deployment --all --for=condition=Available --timeout="$WAIT"
}

for tool in docker kind kubectl curl; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found on PATH"
done

if [ "${1:-}" = "delete" ]; then
  kind delete cluster --name "$KIND_CLUSTER"
  exit 0
fi

step "kind cluster '$KIND_CLUSTER' ($KIND_NODE_IMAGE), Kourier on 127.0.0.1:$HTTP_PORT"
if kind get clusters | grep -qx "$KIND_CLUSTER"; then
  echo "exists; reusing it"
else
  kind create cluster --name "$KIND_CLUSTER" --image "$KIND_NODE_IMAGE" --wait "$WAIT" --config - <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraPortMappings:
      - containerPort: 31080
        hostPort: ${HTTP_PORT}
        listenAddress: 127.0.0.1
EOF
fi
kubectl config use-context "kind-$KIND_CLUSTER" >/dev/null

step "Knative Serving v$KNATIVE_VERSION"
kubectl apply -f "$SERVING/serving-crds.yaml"
kubectl wait crd/services.serving.knative.dev --for=condition=Established --timeout="$WAIT"
kubectl apply -f "$SERVING/serving-core.yaml"
available knative-serving

step "Serving settings: Kourier ingress, domain $DOMAIN, emptyDir volumes, kind-loaded images"
kubectl -n knative-serving patch configmap/config-network --type merge \
  -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
kubectl -n knative-serving patch configmap/config-domain --type merge -p "{\"data\":{\"$DOMAIN\":\"\"}}"
kubectl -n knative-serving patch configmap/config-features --type merge \
  -p '{"data":{"kubernetes.podspec-emptydir":"enabled","kubernetes.podspec-securitycontext":"enabled"}}'
# Images loaded with `kind load` exist in no registry: Knative must not resolve their tags.
kubectl -n knative-serving patch configmap/config-deployment --type merge \
  -p '{"data":{"registries-skipping-tag-resolving":"kind.local,ko.local,dev.local,ghcr.io"}}'

step "Kourier v$KNATIVE_VERSION (NodePort 31080 -> 127.0.0.1:$HTTP_PORT)"
kubectl apply -f "$KOURIER/kourier.yaml"
available kourier-system
kubectl -n kourier-system patch service/kourier \
  -p '{"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":31080}]}}'

step "Knative Eventing v$KNATIVE_VERSION with the Kafka broker v$KNATIVE_KAFKA_VERSION"
kubectl apply -f "$EVENTING/eventing-crds.yaml"
kubectl wait crd/brokers.eventing.knative.dev --for=condition=Established --timeout="$WAIT"
kubectl apply -f "$EVENTING/eventing-core.yaml"
kubectl apply -f "$KAFKA_BROKER/eventing-kafka-controller.yaml"
kubectl apply -f "$KAFKA_BROKER/eventing-kafka-broker.yaml"
available knative-eventing

step "Strimzi v$STRIMZI_VERSION operator in namespace kafka"
kubectl create namespace kafka --dry-run=client -o yaml | kubectl apply -f -
curl -fsSL "$STRIMZI" | sed 's/namespace: myproject/namespace: kafka/' | kubectl -n kafka apply --server-side -f -
kubectl wait crd/kafkas.kafka.strimzi.io crd/kafkanodepools.kafka.strimzi.io --for=condition=Established --timeout="$WAIT"
kubectl -n kafka rollout status deployment/strimzi-cluster-operator --timeout="$WAIT"

step "images: $RUNTIME_IMAGE and $PLATFORM_IMAGE (docker build, kind load)"
docker build --target runtime -t "$RUNTIME_IMAGE" "$ROOT"
docker build --target platform -t "$PLATFORM_IMAGE" "$ROOT"
kind load docker-image --name "$KIND_CLUSTER" "$RUNTIME_IMAGE" "$PLATFORM_IMAGE"

step "secrets in par-system (kept if they exist): par-postgres, par-registry, par-gateway, par-dead-letters"
kubectl create namespace par-system --dry-run=client -o yaml | kubectl apply -f -
if ! kubectl -n par-system get secret par-postgres >/dev/null 2>&1; then
  PG_PASSWORD="$(docker run --rm "$PLATFORM_IMAGE" python -c 'import secrets; print(secrets.token_hex(16))')"
  kubectl -n par-system create secret generic par-postgres --from-literal=POSTGRES_PASSWORD="$PG_PASSWORD"
  ADMIN_KEY="$(docker run --rm "$PLATFORM_IMAGE" python -c 'from gateway.apikeys import generate_key; print(generate_key()[1])')"
  kubectl -n par-system create secret generic par-registry \
    --from-literal=DATABASE_URL="postgresql://par:${PG_PASSWORD}@par-postgres.par-system:5432/par" \
    --from-literal=PAR_ADMIN_KEY="$ADMIN_KEY"
else
  echo "exist; reusing them"
fi
# The gateway's key (reads the registry's snapshot feed only) and the dead-letter store's token.
if ! kubectl -n par-system get secret par-gateway >/dev/null 2>&1; then
  GATEWAY_KEY="$(docker run --rm "$PLATFORM_IMAGE" python -c 'from gateway.apikeys import generate_key; print(generate_key()[1])')"
  kubectl -n par-system create secret generic par-gateway --from-literal=PAR_GATEWAY_KEY="$GATEWAY_KEY"
fi
if ! kubectl -n par-system get secret par-dead-letters >/dev/null 2>&1; then
  DLQ_TOKEN="$(docker run --rm "$PLATFORM_IMAGE" python -c 'import secrets; print(secrets.token_urlsafe(32))')"
  kubectl -n par-system create secret generic par-dead-letters --from-literal=PAR_EVENTING_ADMIN_TOKEN="$DLQ_TOKEN"
fi

step "PostgreSQL and Redis for the registry and gateway (knative/dev)"
kubectl apply -k "$ROOT/knative/dev"
kubectl -n par-system rollout status statefulset/par-postgres --timeout="$WAIT"
kubectl -n par-system rollout status deployment/par-redis --timeout="$WAIT"

step "Kafka cluster, kafka-broker-config and the default Broker (knative/eventing)"
kubectl apply -k "$ROOT/knative/eventing"
echo "waiting for Kafka my-cluster (the first start pulls the Kafka image: minutes)"
kubectl -n kafka wait kafka/my-cluster --for=condition=Ready --timeout="$WAIT"
kubectl -n default wait broker/default --for=condition=Ready --timeout="$WAIT"

step "PAR registry (knative/registry)"
kubectl apply -k "$ROOT/knative/registry"
kubectl -n par-system rollout status deployment/par-registry --timeout="$WAIT"

step "PAR gateway as Kourier's ext_authz (knative/gateway/kourier)"
kubectl apply -k "$ROOT/knative/gateway/kourier"
kubectl -n par-system rollout status deployment/par-gateway --timeout="$WAIT"
kubectl -n knative-serving patch deployment/net-kourier-controller \
  --patch-file "$ROOT/knative/gateway/kourier/net-kourier-controller.patch.yaml"
kubectl -n knative-serving rollout status deployment/net-kourier-controller --timeout="$WAIT"

cat <<EOF

PAR is up on kind cluster '$KIND_CLUSTER' (${SECONDS}s).

  Gateway (Kourier + PAR ext_authz):  http://{agent}.{namespace}.$DOMAIN:$HTTP_PORT
  Admin key:  kubectl -n par-system get secret par-registry -o jsonpath='{.data.PAR_ADMIN_KEY}' | base64 -d

Deploy an agent with the registry:
  kubectl -n par-system port-forward service/par-registry 8097:80 &
  export PAR_REGISTRY_URL=http://127.0.0.1:8097
  export PAR_API_KEY="\$(kubectl -n par-system get secret par-registry -o jsonpath='{.data.PAR_ADMIN_KEY}' | base64 -d)"
  par deploy path/to/my-agent-0.1.0.apkg
  curl -H "Authorization: Bearer \$PAR_API_KEY" -H 'content-type: application/json' \\
       -d '{"x": 1}' http://my-agent.default.$DOMAIN:$HTTP_PORT/invoke

Remove it all:  KIND_CLUSTER=$KIND_CLUSTER $0 delete
EOF
