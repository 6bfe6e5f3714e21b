# Rendered by stamp 0.1.0 (template: generic).
# Adds the release stamp to the base image without running anything from it (no RUN step).
ARG BASE_IMAGE=registry.example/acme/api:3.2@sha256:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd
FROM ${BASE_IMAGE}

LABEL "org.opencontainers.image.version"="v2.1-canary"
LABEL "org.opencontainers.image.created"="2025-04-05T00:00:00Z"
LABEL "org.opencontainers.image.base.digest"="sha256:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
LABEL "org.opencontainers.image.revision"="0123456789abcdef0123456789abcdef01234567"
LABEL "org.opencontainers.image.base.name"="registry.example/acme/api:3.2"
LABEL "dev.stamp.version-json"="/srv/version.json"
ENV IMAGE_VERSION="v2.1-canary"
ENV IMAGE_CREATED="2025-04-05T00:00:00Z"
ENV IMAGE_REVISION="0123456789abcdef0123456789abcdef01234567"
COPY --chmod=0644 ["stamp/srv/VERSION", "/srv/VERSION"]
COPY --chmod=0644 ["stamp/srv/version.json", "/srv/version.json"]
COPY --chmod=0755 ["stamp/usr/local/bin/health.sh", "/usr/local/bin/health.sh"]
HEALTHCHECK --interval=30s --timeout=10s --start-period=1m --retries=3 CMD ["/usr/local/bin/health.sh"]
