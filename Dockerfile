# syntax=docker/dockerfile:1
# Build stage: turn the project into a wheel (build tools stay in this stage only).
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cds_service ./cds_service
COPY hooks ./hooks
COPY fhir_fixtures ./fhir_fixtures
RUN pip wheel --no-cache-dir --wheel-dir /wheels . \
    && find /wheels -name 'ivig_cds-*.whl' > /wheels/requirements.txt

# Runtime stage: the wheel and its dependencies, a non-root user, no compilers.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IVIG_CDS_AUTH=jwt
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin ivig
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels --requirement /wheels/requirements.txt \
    && rm -rf /wheels
USER 10001
WORKDIR /home/ivig
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
CMD ["ivig-cds", "serve", "--host", "0.0.0.0", "--port", "8080"]
