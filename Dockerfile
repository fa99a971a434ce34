# syntax=docker/dockerfile:1.7
# PAR images (BuildKit; buildah/podman build too: scripts/images.sh). Two targets, one source tree:
#
#   docker build --target runtime  -t ghcr.io/pixell/par-runtime:0.1.0 .   # one agent per Knative Service
#   docker build --target platform -t ghcr.io/pixell/par:0.1.0 .           # par registry|gateway|eventing|up
#
# The runtime image holds only what `python -m runtime` imports, so an agent's own requirements are
# not shadowed by platform libraries and cold starts pull a small image. Both images run as the
# numeric non-root UID 10001 (Kubernetes' runAsNonRoot can only verify a numeric USER) and write
# nothing outside /tmp: they run with readOnlyRootFilesystem, /tmp being an emptyDir.
#
# A package index (a PyPI mirror or proxy) and a CA bundle, for networks that need them:
#   docker build --build-arg UV_INDEX_URL=https://mirror.example/simple \
#                --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt ...
# (PIP_INDEX_URL is taken when UV_INDEX_URL is not given.) uv trusts only the roots it ships, so where
# TLS is intercepted the build needs the interceptor's CA: the secret `ca`, mounted only while a step
# downloads. The index arguments are declared in build stages only, so they are not in the final
# images' history.
#
# Immutable agent images: bake a prepared package (extracted, dependencies installed) into the
# runtime image; the Service then needs no PACKAGE_URL download at start:
#   docker build --target runtime --build-arg APKG=dist/my-agent-1.0.0.apkg -t my-agent:1.0.0 .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# --- resolve: the committed uv.lock for both images, so they hold exactly the versions CI tested --
FROM ${PYTHON_IMAGE} AS resolve
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_NO_CACHE=1
WORKDIR /src
COPY pyproject.toml README.md uv.lock ./
RUN uv export --frozen --no-emit-project --no-hashes --quiet --output-file requirements.lock

# --- wheel: PAR itself, built once for both images -------------------------------------------------
FROM resolve AS wheel
ARG UV_INDEX_URL=
ARG PIP_INDEX_URL=
COPY runtime ./runtime
COPY gateway ./gateway
COPY eventing ./eventing
COPY serving ./serving
COPY registry ./registry
COPY cli ./cli
# par up --demo's example agents: the wheel ships them through the link cli/up/examples -> examples/.
COPY examples ./examples
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
    && export UV_INDEX_URL="${UV_INDEX_URL:-$PIP_INDEX_URL}" \
    && uv build --wheel --out-dir /wheels .

# --- runtime-build: a venv with the runtime's imports only --------------------------------------
FROM resolve AS runtime-build
ARG UV_INDEX_URL=
ARG PIP_INDEX_URL=
# Distributions the runtime imports (tests/unit/cluster checks this list against runtime/*.py).
ARG RUNTIME_REQUIREMENTS="fastapi uvicorn[standard] httpx sniffio cloudevents pydantic pydantic-settings PyYAML typer rich prometheus-client python-multipart packaging grpcio protobuf opentelemetry-sdk opentelemetry-exporter-otlp-proto-http"
# The installer for an agent's own requirements when a package is prepared at start (PACKAGE_URL):
# runtime.prepare runs uv when present, `python -m pip` otherwise, and a uv venv has no pip. pip is the
# smaller of the two that works: 14 MB in the venv against uv's 44 MB static binary (measured with
# scripts/images.sh), and it reads the same PIP_INDEX_URL / PIP_CERT a deployment may set. uv stays in
# the build stages; a baked package (APKG) is prepared at build time with the same pip.
ARG PIP_VERSION=26.3
# hadolint ignore=SC2086
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
    && export UV_INDEX_URL="${UV_INDEX_URL:-$PIP_INDEX_URL}" \
    && uv venv /opt/par \
    && uv pip install --python /opt/par/bin/python --constraint requirements.lock $RUNTIME_REQUIREMENTS \
       "pip==$PIP_VERSION"
COPY --from=wheel /wheels /wheels
RUN uv pip install --python /opt/par/bin/python --no-deps /wheels/*.whl

# --- platform-build: every dependency -----------------------------------------------------------
FROM resolve AS platform-build
ARG UV_INDEX_URL=
ARG PIP_INDEX_URL=
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
    && export UV_INDEX_URL="${UV_INDEX_URL:-$PIP_INDEX_URL}" \
    && uv venv /opt/par \
    && uv pip install --python /opt/par/bin/python --requirement requirements.lock
COPY --from=wheel /wheels /wheels
RUN uv pip install --python /opt/par/bin/python --no-deps /wheels/*.whl

# --- final stages -------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS base
ENV PATH=/opt/par/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    PORT=8080
RUN useradd --uid 10001 --gid 0 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin par
WORKDIR /tmp

FROM base AS platform
COPY --from=platform-build /opt/par /opt/par
USER 10001
EXPOSE 8080
CMD ["par", "--help"]

# --- agent: a baked package, prepared in a build stage (its index and CA stay out of the image) ---
FROM base AS agent
COPY --from=runtime-build /opt/par /opt/par
ARG UV_INDEX_URL=
ARG PIP_INDEX_URL=
# An APKG path inside the build context to bake in; empty (the default) bakes nothing (COPY then
# copies the Dockerfile as a placeholder, removed at once).
ARG APKG=
COPY ${APKG:-Dockerfile} /opt/agent/source
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && export PIP_INDEX_URL="${PIP_INDEX_URL:-$UV_INDEX_URL}" \
    && if [ -z "$PIP_INDEX_URL" ]; then unset PIP_INDEX_URL; fi \
    && mkdir -p /opt/agent/prepared \
    && if [ -n "$APKG" ]; then \
        par runtime prepare /opt/agent/source --into /opt/agent/prepared \
        && python -m compileall -q /opt/agent/prepared ; \
    fi && rm /opt/agent/source

FROM base AS runtime
COPY --from=runtime-build /opt/par /opt/par
COPY --from=agent /opt/agent /opt/agent
ARG APKG=
ENV PAR_RUNTIME_WORK_DIR=/tmp/par \
    AGENT_PACKAGE_PATH=${APKG:+/opt/agent/prepared}
USER 10001
EXPOSE 8080
CMD ["python", "-m", "runtime"]
