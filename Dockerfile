# ivig-cds: a reproducible, hardened image (README, "Docker").
#
# No "# syntax" line: the builder's own Dockerfile frontend is used, so a build fetches nothing
# before the base image. The base is named by digest; build on a newer patch release, or on a copy
# in a private registry, with --build-arg PYTHON_IMAGE=<name>@sha256:<digest>. Python 3.11 is the
# version CI tests. Runtime dependencies come from requirements.lock (hashes checked, wheels only),
# from PyPI or from the index a pip.conf passed as a build secret names (never stored in a layer):
#   docker build --secret id=pip.conf,src=$HOME/.config/pip/pip.conf .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

# --- base: the interpreter and what every stage shares --------------------------------------------
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# --- deps: the locked dependencies in /opt/venv; rebuilt only when requirements.lock changes -------
FROM base AS deps
COPY requirements.lock /opt/requirements.lock
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    python -m venv --without-pip /opt/venv \
    && python -m pip --python /opt/venv/bin/python install --no-cache-dir --no-deps --require-hashes \
        --only-binary=:all: --requirement /opt/requirements.lock

# --- build: the project itself, built with the locked setuptools, installed under /install ---------
FROM deps AS build
WORKDIR /src
COPY requirements-build.lock ./
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    python -m pip --python /opt/venv/bin/python install --no-cache-dir --no-deps --require-hashes \
        --only-binary=:all: --requirement requirements-build.lock
COPY pyproject.toml README.md ./
COPY cds_service ./cds_service
COPY hooks ./hooks
COPY fhir_fixtures ./fhir_fixtures
RUN python -m pip --python /opt/venv/bin/python install --no-cache-dir --no-deps --no-build-isolation \
        --prefix /install .

# --- runtime: the dependency layer of "deps", the project's files, a non-root user, state in /data --
FROM deps AS runtime
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="ivig-cds" \
      org.opencontainers.image.description="CDS Hooks service: IVIG and platelet transfusion decision support" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
# Group 0 owns /data and may write to it, so the service also runs under an arbitrary UID whose
# group is 0 (OpenShift's restricted policy); the setgid bit keeps new files in group 0.
RUN useradd --no-log-init --system --uid 10001 --gid 0 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin ivig \
    && mkdir /data \
    && chown 10001:0 /data \
    && chmod 2770 /data
COPY --from=build /install/ /opt/venv/
# The default SQLite database, the working directory and (without a writable /tmp) Python's
# temporary files all live in /data: with a read-only root file system nothing else is written.
ENV PATH=/opt/venv/bin:$PATH \
    IVIG_CDS_HOST=0.0.0.0 \
    IVIG_CDS_PORT=8080 \
    IVIG_CDS_DATABASE_URL=sqlite:////data/ivig-cds.db
VOLUME ["/data"]
WORKDIR /data
USER 10001:0
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('IVIG_CDS_PORT') or '8080'; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status != 200)"]
CMD ["ivig-cds", "serve"]
