# Rendered by stamp 0.1.0 (template: anything-llm).
# The release stamp of the official anything-llm image: version files, the enhanced health
# check and OCI labels. Nothing from the base image runs (no RUN step), and the base's USER,
# WORKDIR and entrypoint are left as they are.
ARG BASE_IMAGE=docker.io/mintplexlabs/anything-llm:1.16.0@sha256:abababababababababababababababababababababababababababababababab
FROM ${BASE_IMAGE}

LABEL "org.opencontainers.image.version"="v2.1-canary"
LABEL "org.opencontainers.image.created"="2025-04-05T00:00:00Z"
LABEL "org.opencontainers.image.base.digest"="sha256:abababababababababababababababababababababababababababababababab"
LABEL "org.opencontainers.image.revision"="0123456789abcdef0123456789abcdef01234567"
LABEL "org.opencontainers.image.base.name"="docker.io/mintplexlabs/anything-llm:1.16.0"
LABEL "team"="ai"
LABEL "dev.stamp.version-json"="/app/version.json"
ENV IMAGE_VERSION="v2.1-canary"
ENV IMAGE_CREATED="2025-04-05T00:00:00Z"
ENV IMAGE_REVISION="0123456789abcdef0123456789abcdef01234567"
ENV FEATURE_X="1"

COPY --chmod=0755 ["stamp/app/health-check-enhanced.sh", "/app/health-check-enhanced.sh"]
COPY --chmod=0644 ["stamp/app/server/public/version.json", "/app/server/public/version.json"]
COPY --chmod=0644 ["stamp/app/version.json", "/app/version.json"]
COPY --chmod=0644 ["stamp/app/version.txt", "/app/version.txt"]

HEALTHCHECK --interval=30s --timeout=10s --start-period=1m --retries=3 CMD ["/app/health-check-enhanced.sh"]
