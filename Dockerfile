# syntax=docker/dockerfile:1
# The prodready operator image: `docker build -t prodready .` then `docker run prodready --help`.
#
# The base is pinned by version. For a release build, pin it by digest as well, resolved at
# build time (there is no registry access where this file is tested):
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm --format '{{json .Manifest.Digest}}'
#   docker build --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# -- builder: the package and its pinned dependencies, installed into a venv ---------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/prodready
# Dependencies first: the layer is reused until pyproject.toml or constraints.txt change.
COPY pyproject.toml constraints.txt README.md ./
COPY operator/ operator/
RUN /opt/prodready/bin/pip install --no-compile -c constraints.txt . \
    && /opt/prodready/bin/python -m compileall -q /opt/prodready/lib \
    && /opt/prodready/bin/prodready --version

# -- runtime: the venv only, as a non-root user ------------------------------------------
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="prodready" \
      org.opencontainers.image.description="A Kubernetes operator that makes production-readiness something the cluster enforces." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
# The venv's interpreter is a symlink to the base image's python, at the same path here.
COPY --from=builder /opt/prodready /opt/prodready
ENV PATH=/opt/prodready/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# 65532: the conventional "nonroot" UID; numeric, so runAsNonRoot can verify it.
USER 65532:65532
WORKDIR /tmp
# 8080: /healthz, /readyz, /metrics. 9443: the admission webhook (HTTPS).
EXPOSE 8080 9443
ENTRYPOINT ["prodready"]
CMD ["run"]
