import ArgumentParser
import Foundation
import IO
import Layers
import OCI
import StampCore

struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Stamp a base image and write the result.",
        discussion: """
            Adds one layer holding the version stamp (paths from the profile: anything-llm puts \
            /app/version.txt and /app/version.json), sets OCI labels and annotations (version, \
            revision, created, source, base name and digest), IMAGE_VERSION/IMAGE_REVISION/IMAGE_CREATED \
            and --env in the environment, and one history entry. Every platform of a multi-platform \
            base is stamped; attestation manifests are dropped with a notice.

            Same inputs and SOURCE_DATE_EPOCH (or --created), same output bytes.

            Every flag has a key of the same name in --config FILE (YAML); flags override the file:
              base: oci-archive:anything-llm.tar:1.16.0
              version: v2.1-canary
              label: {team: ai}
              env: [FEATURE_X=1]

            Example:
              stamp build --base oci-archive:anything-llm.tar:1.16.0 \\
                          --version v2.1-canary-build-20250405 --revision "$GITHUB_SHA" \\
                          --label team=ai --annotation org.example.ticket=REL-42 \\
                          --env FEATURE_X=1 --tag v2.1-canary \\
                          --output oci-archive:anything-llm-v2.1-canary.tar
            """
    )

    @OptionGroup var output: OutputFlags

    @OptionGroup var flags: StampFlags

    @Flag(help: "Print the result as one JSON document on stdout.")
    var json = false

    @Flag(name: [.short, .long], help: "Print nothing but errors.")
    var quiet = false

    @OptionGroup var progress: ProgressFlag

    @Option(
        help: ArgumentHelp(
            "Write the result's digest and descriptor here as JSON, with the keys docker buildx's --metadata-file "
                + "uses (containerimage.digest, containerimage.descriptor, image.name) and stamp's own "
                + "(stamp.version, stamp.platforms, ...).",
            valueName: "file"))
    var metadataFile: String?

    @Option(help: ArgumentHelp("Write the result's digest here (as skopeo --digestfile does).", valueName: "file"))
    var digestfile: String?

    func run() throws {
        MemoryPolicy.fewArenas()
        let result = try reportingErrors(json: json) { () throws -> BuildResult in
            let plan = try StampPlan.resolve(
                try flags.settings(adding: [output]), environment: ProcessInfo.processInfo.environment)
            return try Stamper.build(plan, diagnostics: try progress.diagnostics(quiet: quiet))
        }
        try reportingErrors(json: json) {
            try handOff(
                digest: result.digest, metadata: result.metadata, platforms: result.platforms,
                outputs: [("version", result.version)] + (result.imageName.map { [("image", $0)] } ?? [])
                    + [("tags", result.names.joined(separator: ","))],
                digestfile: digestfile, metadataFile: metadataFile)
        }
        if json {
            printOut(JSONValue.encodeString(result.json))
        } else if !quiet {
            printOut("stamped \(result.version) -> \(result.output)")
            printOut("  digest   \(result.digest)")
            for p in result.platforms {
                printOut("  \(p.platform.padding(toLength: 16, withPad: " ", startingAt: 0)) \(p.manifest)")
            }
            if let l = result.layer { printOut("  layer    \(l.digest) (\(l.files.count) files, \(l.size) bytes)") }
            if result.scan.fromCache + result.scan.read > 0 {
                printOut("  base     \(result.scan.read) layers read, \(result.scan.fromCache) from the scan cache")
            }
            if let p = result.pushed {
                printOut(
                    p.unchanged
                        ? "  pushed   nothing: the tag already names this digest"
                        : "  pushed   \(p.uploaded) blobs uploaded (\(p.uploadedBytes) bytes), \(p.mounted) mounted, "
                            + "\(p.existed) already there"
                )
            }
        }
    }
}

/// What build and push leave for the next CI step: `--digestfile`, `--metadata-file`, and in a
/// GitHub Actions step its outputs (`digest`, `outputs` in order, `imageid` — build-push-action's,
/// the config's digest when there is one config — and `metadata`).
func handOff(
    digest: String, metadata: JSONValue, platforms: [PlatformEntry], outputs: [(String, String)],
    digestfile: String?, metadataFile: String?
) throws {
    if let f = metadataFile { try writeAtomically(f, JSONValue.encodePretty(metadata)) }
    if let f = digestfile { try writeAtomically(f, Array(digest.utf8)) }
    if let gh = ProcessInfo.processInfo.environment["GITHUB_OUTPUT"], !gh.isEmpty {
        var lines = "digest=\(digest)\n"
        for (k, v) in outputs { lines += "\(k)=\(v)\n" }
        if platforms.count == 1 { lines += "imageid=\(platforms[0].config)\n" }
        lines += "metadata=\(JSONValue.encodeString(metadata))\n"
        try appendLine(gh, lines)
    }
}

/// A small file written whole under a temporary name and renamed into place.
func writeAtomically(_ path: String, _ bytes: [UInt8]) throws {
    let f = try WritableFile.temporary(beside: path)
    try f.write(bytes)
    try f.commit(to: path, sync: false)
}

/// Appends to a file that others append to too (`$GITHUB_OUTPUT`).
func appendLine(_ path: String, _ text: String) throws {
    let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw StampError.output("\(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
        throw StampError.output("\(path): \(String(cString: strerror(errno)))")
    }
}

/// Flags of the enhanced health check, shared by `build` and `healthcheck`.
struct HealthOptions: ParsableArguments {
    @Option(help: "Where the health-check script goes (anything-llm: /app/health-check-enhanced.sh).")
    var healthScript: String?

    @Option(help: "Port the app listens on when SERVER_PORT is unset (anything-llm: 3001, else from /app/server/.env).")
    var healthPort: Int?

    @Option(help: "Path the script probes (anything-llm: /api/ping).")
    var healthPath: String?

    @Option(help: "Healthcheck interval (default 30s).")
    var healthInterval: String?

    @Option(help: "Healthcheck timeout (default 10s); the probe itself gives up 2s earlier.")
    var healthTimeout: String?

    @Option(help: "Healthcheck start period (default 60s).")
    var healthStartPeriod: String?

    @Option(help: "Healthcheck retries (default 3).")
    var healthRetries: Int?

}

/// Whether an image gets the health check at all; `build` and `dockerfile` only (`healthcheck`
/// prints the script, whatever the image has).
struct HealthSwitches: ParsableArguments {
    @Flag(help: "Keep the base's Healthcheck and add no script.")
    var noHealthcheck = false

    @Flag(help: "Build even when the image has no /bin/sh or no curl, wget or node (a warning instead of an error).")
    var allowMissingClient = false

}

struct AssetFlags: ParsableArguments {
    @Flag(
        help: "Give the image's frontend content-hashed names, references rewritten (anything-llm: /app/server/public)."
    )
    var hashAssets = false

    @Option(name: .customLong("assets"), help: "Use this local frontend build instead of the image's, then hash it.")
    var assets: String?

    @Option(help: "The folder the app serves static files from.")
    var assetRoot: String?

    @Option(
        help: ArgumentHelp(
            "A file outside the asset root whose references to assets are rewritten (repeatable).", valueName: "path"))
    var rewrite: [String] = []

    @Option(
        help: ArgumentHelp(
            "Frontend files that keep their names, glob relative to the asset root (repeatable).", valueName: "glob"))
    var keep: [String] = []

    @Flag(help: "Add integrity attributes to <script> and <link> tags in HTML.")
    var sri = false

    @Option(
        help: ArgumentHelp(
            "Most bytes the image's frontend may expand to (default 1G; K, M, G suffixes): a larger one is refused as "
                + "a decompression bomb.",
            valueName: "size"))
    var maxFrontendSize: String?

}

/// What only `build` does with its output (a Dockerfile leaves these to BuildKit); each has a
/// key in --config.
struct OutputFlags: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Where to write: oci-archive:TAR[:TAG] (default for a plain path), oci:DIR[:TAG], docker-archive:TAR, "
                + "docker://HOST/REPO:TAG.")
    )
    var output: String?

    @Option(
        name: [.customLong("tag"), .customShort("t")],
        help: ArgumentHelp(
            "Name of the result in the output: TAG or NAME:TAG (ref.name and Docker RepoTags; repeatable, every one "
                + "is written or pushed).",
            valueName: "tag"))
    var tags: [String] = []

    @Option(help: "Compression of the new layer: gzip (default), zstd or none.")
    var compression: String?

    @Option(help: "Compression level (gzip 1-9, default 6; zstd 1-19, default 3).")
    var compressionLevel: Int?

    @Option(
        help: ArgumentHelp(
            "Image format: oci or docker (default: the base's; docker-archive: output is docker).",
            discussion:
                "podman and buildah read Healthcheck only from a Docker-format config; dockerd reads it from both."))
    var format: String?

    @Option(help: ArgumentHelp("Record the base's and the output's digests in this JSON lock file.", valueName: "file"))
    var lock: String?

    @Flag(help: "Refuse to build when the base now resolves to another digest than --lock FILE records.")
    var locked = false

    @Flag(
        help: ArgumentHelp(
            "Put an archive output on disk (fsync) before renaming it into place, so a power loss cannot leave it "
                + "incomplete under its name. Off by default: the same inputs rebuild the same bytes.")
    )
    var fsync = false

}

/// The settings of a stamp, shared by `build` and `dockerfile`; each has a key in --config.
struct StampFlags: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The image to stamp: oci:DIR[:REF], oci-archive:TAR[:REF], docker-archive:TAR, "
                + "docker://HOST/REPO[:TAG|@DIGEST], or a path.")
    )
    var base: String?

    @Option(help: "The version to stamp (e.g. v2.1-canary-build-20250405).")
    var version: String?

    @Option(help: "The source revision. Default: $GITHUB_SHA, $CI_COMMIT_SHA, or `git rev-parse HEAD`.")
    var revision: String?

    @Option(help: "URL of the source repository. Default: from GitHub Actions or GitLab CI variables.")
    var source: String?

    @Option(help: "Build time, RFC 3339 or epoch seconds. Default: $SOURCE_DATE_EPOCH, else now.")
    var created: String?

    @Option(
        name: .customLong("label"), help: ArgumentHelp("A config label KEY=VALUE (repeatable).", valueName: "key=value")
    )
    var labels: [String] = []

    @Option(
        name: .customLong("annotation"),
        help: ArgumentHelp("A manifest and index annotation KEY=VALUE (repeatable).", valueName: "key=value"))
    var annotations: [String] = []

    @Option(help: ArgumentHelp("An environment variable KEY=VALUE for the image (repeatable).", valueName: "key=value"))
    var env: [String] = []

    @Option(
        help: ArgumentHelp(
            "Add a file or folder: SRC:DEST, DEST absolute; DEST ending in / keeps the name (repeatable).",
            valueName: "src:dest"))
    var add: [String] = []

    @Option(
        name: .customLong("platform"),
        help: ArgumentHelp(
            "Stamp only this platform OS/ARCH[/VARIANT] (repeatable). Default: all.", valueName: "os/arch"))
    var platforms: [String] = []

    @Option(help: "Defaults for paths and app facts: anything-llm (default) or generic (everything from flags).")
    var profile: String?

    @Option(help: "Path of version.txt in the image (\"\" for none).")
    var versionFile: String?

    @Option(name: .customLong("version-json"), help: "Path of version.json in the image (\"\" for none).")
    var versionJSON: String?

    @Option(help: "Name of the base for org.opencontainers.image.base.name (default: what the source calls it).")
    var baseName: String?

    @OptionGroup(title: "Health check")
    var health: HealthOptions

    @OptionGroup(title: "Health check")
    var healthSwitches: HealthSwitches

    @OptionGroup(title: "Frontend assets")
    var assets: AssetFlags

    @Option(
        help: ArgumentHelp(
            "Where a copy of version.json is served by the app (anything-llm: /app/server/public/version.json, at "
                + "/version.json).")
    )
    var publicVersion: String?

    @Flag(help: "Do not publish version.json in the app's static folder.")
    var noPublicVersion = false

    @OptionGroup(title: "Registry")
    var registry: RegistryFlags

    @OptionGroup(title: "Registry")
    var upload: UploadFlags

    @Option(
        help: ArgumentHelp(
            "Keep what was read from base layers here, by layer digest, so the next build on the same base skips "
                + "decompressing them (default: $STAMP_CACHE_DIR, $XDG_CACHE_HOME/stamp or ~/.cache/stamp).",
            valueName: "dir"))
    var cacheDir: String?

    @Flag(help: "Read every base layer, and keep nothing for the next build.")
    var noCache = false

    @Option(help: "A YAML file with the same settings; flags override it. Default: ./stamp.yaml when there is one.")
    var config: String?

    /// The flags over the config file (`--config`, else `./stamp.yaml` when there is one);
    /// `more` adds a command's own flags first.
    /// The settings the flags give (with `more` groups of flags), over a settings file's.
    func settings(adding more: [any ParsableArguments] = []) throws -> StampSettings {
        var s = StampSettings.from(flags: [self] + more)
        if let file = config
            ?? (Path.exists(Self.defaultConfig) && !Path.isDirectory(Self.defaultConfig) ? Self.defaultConfig : nil)
        {
            if config == nil {
                printError(
                    "stamp: reading ./\(Self.defaultConfig) (found in the working folder; --config FILE names another)")
            }
            s = s.merged(over: try StampSettings.load(file: file))
        }
        return s
    }

    /// The config file read when `--config` is not given and the working folder has one.
    static let defaultConfig = "stamp.yaml"
}
