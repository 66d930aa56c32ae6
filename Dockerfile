# qwen-free-api: the server, installed from the hashed lock file, run as a non-root user.
#   docker build -t qwen-free-api .
#   docker compose up -d --build     (one instance: docker-compose.yml; see README "Docker")
#
# Base: the official python:3.11-slim-bookworm image (Python 3.11.17), pinned to its multi-arch
# (linux/amd64 + linux/arm64) OCI index digest. No registry is reachable from where this file was
# written, so the digest was taken from public sources, not pulled: several independent projects
# pin this same index digest for 3.11.17-slim-bookworm (October 2026), one noting that its bytes
# match Docker Hub's. Bump it deliberately, after
# `docker buildx imagetools inspect python:3.11-slim-bookworm`.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:0a310eeecf4e1f5a0743f9a6520c90c88d089c903ca5fd283f501e3a805f5f89

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# Every package, setuptools and wheel (the build backend) included, comes from the lock by hash.
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation . \
    && /opt/venv/bin/qwen-free-api serve --help > /dev/null

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 qfa \
    && useradd --system --uid 10001 --gid qfa --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin qfa \
    && mkdir -p /app/data && chown -R 10001:10001 /app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    QFA_HOST=0.0.0.0 \
    QFA_PORT=8000 \
    QFA_STORE=sqlite:////app/data/qwen-free-api.db
WORKDIR /app
USER 10001:10001
VOLUME ["/app/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ping' % os.environ.get('QFA_PORT', '8000'), timeout=3)"]
CMD ["qwen-free-api", "serve"]
