{{! A release stamp for any image: whatever files, labels, env and health check the flags give. }}
# Rendered by stamp {{stamp_version}} (template: generic).
# Adds the release stamp to the base image without running anything from it (no RUN step).
{{^pinned}}
# NOTE: the base is not pinned by digest; pass --base-digest (or a local base) to stamp dockerfile.
{{/pinned}}
ARG BASE_IMAGE={{base_image}}
FROM ${BASE_IMAGE}

{{#labels}}
LABEL {{key}}={{value}}
{{/labels}}
{{#env}}
ENV {{key}}={{value}}
{{/env}}
{{#copies}}
COPY {{chmod}}{{paths}}
{{/copies}}
{{#healthcheck}}
HEALTHCHECK {{health_options}} CMD {{health_cmd}}
{{/healthcheck}}
