// Generated from dockerfiles/*.Dockerfile by `make templates`; a test keeps them equal.
public enum BuiltinTemplates {
    public static let all: [String: String] = [
        "anything-llm": #"""
        {{! The anything-llm release stamp. Edit freely; stamp dockerfile --template fills it in.
            Values arrive quoted for where they land: labels and env as Dockerfile strings, paths as
            JSON arrays. }}
        # Rendered by stamp {{stamp_version}} (template: anything-llm).
        # The release stamp of the official anything-llm image: version files, the enhanced health
        # check and OCI labels. Nothing from the base image runs (no RUN step), and the base's USER,
        # WORKDIR and entrypoint are left as they are.
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
        {{#hidden}}
        # stamp build also hides {{hidden}} replaced asset name(s) with whiteouts; a Dockerfile cannot
        # remove files without RUN, so here they stay, unreferenced.
        {{/hidden}}
        {{#healthcheck}}

        HEALTHCHECK {{health_options}} CMD {{health_cmd}}
        {{/healthcheck}}

        """#,
        "generic": #"""
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

        """#,
    ]
}
