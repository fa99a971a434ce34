# syntax=docker/dockerfile:1.7
# PAR images (BuildKit). Two targets, one source tree:
#
#   docker build --target runtime  -t ghcr.io/pixell/par-runtime:0.1.0 .   # one agent per Knative Service
#   docker build --target platform -t ghcr.io/pixell/par:0.1.0 .           # par registry|gateway|eventing|up
#
# The runtime image holds only what `python -m runtime` imports, so an agent's own requirements are
# not shadowed by platform libraries and cold starts pull a small image. Both images run as the
# numeric non-root UID 10001 (Kubernetes' runAsNonRoot can only verify a numeric USER) and write
# nothing outside /tmp: they run with readOnlyRootFilesystem, /tmp being an emptyDir.
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

# --- runtime-build: a venv with the runtime's imports only --------------------------------------
FROM resolve AS runtime-build
# Distributions the runtime imports (tests/unit/cluster checks this list against runtime/*.py).
ARG RUNTIME_REQUIREMENTS="fastapi uvicorn[standard] httpx sniffio cloudevents pydantic pydantic-settings PyYAML typer rich prometheus-client python-multipart packaging grpcio protobuf"
# hadolint ignore=SC2086
RUN uv venv /opt/par && uv pip install --python /opt/par/bin/python --constraint requirements.lock $RUNTIME_REQUIREMENTS
COPY runtime ./runtime
COPY gateway ./gateway
COPY eventing ./eventing
COPY serving ./serving
COPY registry ./registry
COPY cli ./cli
RUN uv pip install --python /opt/par/bin/python --no-deps .

# --- platform-build: every dependency -----------------------------------------------------------
FROM resolve AS platform-build
RUN uv venv /opt/par && uv pip install --python /opt/par/bin/python --requirement requirements.lock
COPY runtime ./runtime
COPY gateway ./gateway
COPY eventing ./eventing
COPY serving ./serving
COPY registry ./registry
COPY cli ./cli
RUN uv pip install --python /opt/par/bin/python --no-deps .

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

FROM base AS runtime
# uv installs an agent's requirements when a package is prepared at start (PACKAGE_URL).
COPY --from=uv /uv /usr/local/bin/uv
COPY --from=runtime-build /opt/par /opt/par
# An APKG path inside the build context to bake in; empty (the default) bakes nothing (COPY then
# copies the Dockerfile as a placeholder, removed at once).
ARG APKG=
COPY ${APKG:-Dockerfile} /opt/agent/source
RUN if [ -n "$APKG" ]; then \
        UV_COMPILE_BYTECODE=1 par runtime prepare /opt/agent/source --into /opt/agent/prepared \
        && python -m compileall -q /opt/agent/prepared/app && rm -rf /tmp/.cache ; \
    fi && rm /opt/agent/source
ENV PAR_RUNTIME_WORK_DIR=/tmp/par \
    AGENT_PACKAGE_PATH=${APKG:+/opt/agent/prepared}
USER 10001
EXPOSE 8080
CMD ["python", "-m", "runtime"]
