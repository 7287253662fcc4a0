# PhotoVault: one container image, two ways to run it (docs/deploy.md has the full steps).
#
#  * AWS Lambda (the default): the base image's ENTRYPOINT (/lambda-entrypoint.sh, which starts
#    the Runtime Interface Client) loads the handler named by CMD below.
#
#  * Long-running server for native gRPC callers (ECS, Kubernetes, a VM): override the
#    entrypoint and the command; nothing else changes.
#        docker run --rm -p 50051:50051 -p 8080:8080 --env-file prod.env \
#            --entrypoint photovault IMAGE serve
#    Kubernetes: `command: ["photovault"]`, `args: ["serve"]`; ECS: `entryPoint`/`command` alike.
#    One-off schema migration from a host that reaches the database:
#        docker run --rm -e DATABASE_URL=... --entrypoint photovault IMAGE migrate
#
# Nothing environment-specific and no secret is baked in: all configuration comes from the
# environment at run time (the README's settings table; deploy/template.yaml maps it from
# parameters and Secrets Manager / SSM).
#
# Base image: AWS republishes the `3.11` tag (Amazon Linux 2, glibc 2.26) with OS and runtime
# patches, so a plain rebuild picks them up. Release builds pin it by digest for a reproducible
# image and let Renovate/Dependabot bump the digest:
#     --build-arg BASE_IMAGE=public.ecr.aws/lambda/python:3.11@sha256:<digest>
# Build for the function's architecture and without an attestation index (Lambda accepts a
# single-platform manifest only):
#     docker buildx build --platform linux/arm64 --provenance=false --sbom=false -t IMAGE --load .
ARG BASE_IMAGE=public.ecr.aws/lambda/python:3.11

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# 1. Runtime dependencies only ([project].dependencies and the [server] extra, never [dev]),
#    in their own
#    layer so that a code change does not reinstall them. Wheels only: on this glibc a missing
#    compatible wheel fails the build loudly instead of compiling from an sdist without a
#    toolchain. Bytecode is compiled here (hash-based, not checked against the sources: the
#    image is immutable), so a cold start never compiles; -s/-p record the final paths.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['server']))" \
        > /tmp/requirements.txt \
 && python -m pip install --no-compile --only-binary=:all: --target /opt/deps -r /tmp/requirements.txt \
 && python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
        -s /opt/deps -p "${LAMBDA_TASK_ROOT}" /opt/deps

# 2. The project's wheel: generated stubs (gen/python/photovault), server (with its SQL
#    migrations) and client, plus the `photovault` console script in bin/.
COPY gen/python/photovault gen/python/photovault
COPY server/photovault_server server/photovault_server
COPY client/photovault_client client/photovault_client
RUN python -m pip wheel --no-deps --wheel-dir /tmp/dist . \
 && python -m pip install --no-deps --no-compile --target /opt/app /tmp/dist/photovault-*.whl \
 && python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
        -s /opt/app -p "${LAMBDA_TASK_ROOT}" /opt/app \
 && PYTHONPATH=/opt/app:/opt/deps python -c "import importlib.util, photovault_server.cli; \
assert importlib.util.find_spec('photovault_server.lambda_handler'), 'no Lambda handler module'"

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="photovault" \
      org.opencontainers.image.description="PhotoVault: Lambda handler and photovault serve"

# PYTHONPATH/PATH: Lambda puts LAMBDA_TASK_ROOT on sys.path itself; `photovault` (an overridden
# entrypoint) needs them. The listen addresses only matter to `photovault serve`: in a container
# the contract's loopback defaults would be unreachable. Lambda ignores them (nothing listens).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=${LAMBDA_TASK_ROOT} \
    PATH=${LAMBDA_TASK_ROOT}/bin:${PATH} \
    PHOTOVAULT_GRPC_ADDR=0.0.0.0:50051 \
    PHOTOVAULT_HTTP_ADDR=0.0.0.0:8080 \
    PHOTOVAULT_METRICS_ADDR=0.0.0.0:9464

# Two layers: the dependency layer stays identical (and is not pushed again) across code changes.
COPY --from=build /opt/deps ${LAMBDA_TASK_ROOT}
COPY --from=build /opt/app ${LAMBDA_TASK_ROOT}

# Root-owned, world-readable files; run as an unprivileged uid (`nobody`). Lambda runs functions
# as its own unprivileged user anyway; this matters for `photovault serve` on ECS/Kubernetes
# (numeric, so that runAsNonRoot can verify it).
USER 65534:65534

EXPOSE 50051 8080 9464

CMD ["photovault_server.lambda_handler.handler"]
