# syntax=docker/dockerfile:1
# Two images from one file:
#   docker build --target api -t ptw-api .             GraphQL API, CPU torch (ptw serve --executors 0)
#   docker build --target executor -t ptw-executor .   CUDA executor (ptw worker)
#
# Build arguments:
#   TORCH_VERSION           torch of both images (default: the version CI tests)
#   API_TORCH_INDEX_URL     where the api image finds torch; the CPU-only index keeps CUDA (~3 GB) out of it
#   EXECUTOR_TORCH_INDEX_URL where the executor image finds torch; PyPI's Linux x86_64 wheel is the CUDA 13.0
#                           build, matching CUDA_IMAGE (use https://download.pytorch.org/whl/cu128 together
#                           with a 12.8 CUDA_IMAGE for hosts whose NVIDIA driver is older than 580)
#   PYTHON_IMAGE, CUDA_IMAGE base images (pinned tags, never `latest`)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-runtime-ubuntu24.04

# ---------------------------------------------------------------------------------------------- api
FROM ${PYTHON_IMAGE} AS api-build
ARG TORCH_VERSION=2.13.0
ARG API_TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv \
 && pip install --index-url "${API_TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY api ./api
COPY domain ./domain
COPY executors ./executors
COPY infra ./infra
COPY ptw ./ptw
# torch is already satisfied by the CPU build above, so this adds only the project and its other dependencies.
RUN pip install .

FROM ${PYTHON_IMAGE} AS api
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PATH=/opt/venv/bin:$PATH \
    PTW_ENV=production PTW_DATA_DIR=/var/lib/ptw HOME=/var/lib/ptw
RUN groupadd --system --gid 10001 ptw \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/ptw --create-home --shell /usr/sbin/nologin ptw
COPY --from=api-build /opt/venv /opt/venv
WORKDIR /var/lib/ptw
# The only writable paths when the root filesystem is read-only (as in the ECS task definitions): declared
# volumes so that an empty volume mounted there (Fargate, Docker) starts with the image's owner and mode.
VOLUME ["/var/lib/ptw", "/tmp"]
USER 10001:10001
EXPOSE 8000
# /healthz answers while the process serves; /readyz (database reachable) is for the load balancer's
# routing decisions, not for restarting a container whose database is briefly away.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["ptw", "serve", "--host", "0.0.0.0", "--port", "8000", "--executors", "0"]

# ----------------------------------------------------------------------------------------- executor
FROM ${CUDA_IMAGE} AS executor-build
ARG TORCH_VERSION=2.13.0
ARG EXECUTOR_TORCH_INDEX_URL=https://pypi.org/simple
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
# The distribution's python3 follows the base image; its security updates come with rebuilds of the
# pinned CUDA tag, so apt packages are left unpinned on purpose.
# gcc and the Python headers build ctx.log's C module (executors/_metric_log.c); the image below has neither.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv \
 && pip install --index-url "${EXECUTOR_TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY api ./api
COPY domain ./domain
COPY executors ./executors
COPY infra ./infra
COPY ptw ./ptw
# The build of the C module is optional for pip (a machine without a compiler logs in pure Python); not here.
RUN pip install . && python -c "import ptw.executors._metric_log"

FROM ${CUDA_IMAGE} AS executor
ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PATH=/opt/venv/bin:$PATH \
    PTW_ENV=production PTW_DATA_DIR=/var/lib/ptw HOME=/var/lib/ptw
# Same reason as above for leaving the apt package unpinned.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ptw \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/ptw --create-home --shell /usr/sbin/nologin ptw
COPY --from=executor-build /opt/venv /opt/venv
WORKDIR /var/lib/ptw
VOLUME ["/var/lib/ptw", "/tmp"]
USER 10001:10001
# A worker serves no HTTP: its liveness is the heartbeat it writes to Redis, which the API watches and
# acts on (an executor that stops beating has its runs requeued).
HEALTHCHECK NONE
CMD ["ptw", "worker"]
