# syntax=docker/dockerfile:1
# Two images from one file:
#   docker build --target api -t ptw-api .            the GraphQL API (ptw serve --executors 0)
#   docker build --target executor -t ptw-executor .  a CUDA executor (ptw worker)
# TORCH_INDEX_URL may point pip at a CPU-only torch index for the api image (smaller); empty uses the default.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api ./api
COPY domain ./domain
COPY executors ./executors
COPY infra ./infra
COPY ptw ./ptw
RUN if [ -n "$TORCH_INDEX_URL" ]; then pip install --index-url "$TORCH_INDEX_URL" "torch>=2.4"; fi \
 && pip install .

FROM ${PYTHON_IMAGE} AS api
ENV PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH PTW_DATA_DIR=/var/lib/ptw
RUN useradd --system --uid 10001 --home-dir /var/lib/ptw --create-home ptw
COPY --from=build /opt/venv /opt/venv
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["ptw", "serve", "--host", "0.0.0.0", "--port", "8000", "--executors", "0"]

FROM ${CUDA_IMAGE} AS executor
ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PTW_DATA_DIR=/var/lib/ptw
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3.11 -m venv /opt/venv \
 && useradd --system --uid 10001 --home-dir /var/lib/ptw --create-home ptw
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api ./api
COPY domain ./domain
COPY executors ./executors
COPY infra ./infra
COPY ptw ./ptw
# The default torch wheel for Linux carries CUDA: what the executor wants.
RUN pip install . && rm -rf /src
WORKDIR /var/lib/ptw
USER 10001
CMD ["ptw", "worker"]
