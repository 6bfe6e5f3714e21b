import ArgumentParser
import Foundation
import Layers
import OCI
import Registry
import StampCore

/// How to reach registries; shared by every command that takes an image reference.
struct RegistryFlags: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Registry credentials. Default: --authfile, $REGISTRY_AUTH_FILE, then podman's auth.json "
                + "($XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json), then "
                + "$DOCKER_CONFIG/config.json or ~/.docker/config.json (auths, credHelpers, credsStore).",
            valueName: "user:password"))
    var creds: String?

    @Option(
        help: ArgumentHelp("A containers auth.json or docker config.json to read credentials from.", valueName: "file"))
    var authfile: String?

    @Option(
        help: ArgumentHelp(
            "Verify registry TLS certificates and refuse plain HTTP (default true). false allows HTTP and unverified "
                + "HTTPS.",
            valueName: "bool"))
    var tlsVerify: Bool?

    @Option(
        help: ArgumentHelp(
            "A folder of CA certificates (*.crt) and client pairs (*.cert + *.key) for the registry. Default: "
                + "/etc/containers/certs.d/HOST or /etc/docker/certs.d/HOST.",
            valueName: "dir"))
    var certDir: String?

    /// `upload`: the upload flags of a command that pushes.
    func options(upload: UploadFlags? = nil) throws -> RegistryOptions {
        let s = StampSettings.from(flags: [self] + (upload.map { [$0] } ?? []))
        return try StampPlan.registryOptions(s, environment: ProcessInfo.processInfo.environment)
    }
}

/// How blobs go up; only for the commands that push (build to a registry, push): `inspect`,
/// `verify` and `pull` do not list a flag that would do nothing there.
struct UploadFlags: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Upload blobs larger than this in chunks of this many bytes (default 16 MiB).", valueName: "bytes"))
    var chunkSize: Int?
}

extension ProgressMode: ExpressibleByArgument {}

/// `--progress`, as `docker buildx build` has it; shared by the commands that do long work.
struct ProgressFlag: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "How to show progress on stderr: auto (tty on a terminal, else plain), tty (one redrawn line), plain (a "
                + "line per step and per blob, for CI logs) or quiet. Default: $STAMP_PROGRESS, else auto.",
            valueName: "mode"))
    var progress: ProgressMode?

    /// The flag, else `$STAMP_PROGRESS` (as buildx reads BUILDKIT_PROGRESS), else `auto`; a
    /// misspelt `$STAMP_PROGRESS` is as much an error as a misspelt flag. (Checked when the
    /// command runs, not in `validate()`: a validation error of a subcommand makes
    /// ArgumentParser read the line as the root's, whose `--version` then prints stamp's version
    /// and exits 0 for `stamp build --version v1`.)
    var mode: ProgressMode {
        get throws {
            if let progress { return progress }
            guard let e = ProcessInfo.processInfo.environment["STAMP_PROGRESS"], !e.isEmpty else { return .auto }
            guard let m = ProgressMode(rawValue: e) else {
                throw StampError.usage(
                    "STAMP_PROGRESS=\(oneLine(e, max: 40)) is not a progress mode: auto, tty, plain or quiet")
            }
            return m
        }
    }

    /// Notices and progress on stderr; nothing but errors with `--quiet`.
    func diagnostics(quiet: Bool = false) throws -> Diagnostics { quiet ? .silent : .stderr(progress: try mode) }
}

/// What `push` and `pull` share: registry access and how to report.
struct CopyFlags: ParsableArguments {
    @OptionGroup(title: "Registry")
    var registry: RegistryFlags

    @Flag(help: "Print the result as one JSON document on stdout.")
    var json = false

    @Flag(name: [.short, .long], help: "Print nothing but errors.")
    var quiet = false

    @OptionGroup var progress: ProgressFlag

    @Option(
        help: ArgumentHelp(
            "Write the digest here (as skopeo --digestfile does).", valueName: "file"))
    var digestfile: String?

    @Option(
        help: ArgumentHelp(
            "Write the keys docker buildx build --metadata-file writes (containerimage.digest, "
                + "containerimage.descriptor, image.name) here.", valueName: "file"))
    var metadataFile: String?

    /// Copies and reports; `verb` says what happened ("pushed", "saved").
    func run(
        _ source: () throws -> ImageReference, to destination: () throws -> ImageReference, created: Timestamp,
        verb: String, upload: UploadFlags? = nil
    ) throws {
        let r = try reportingErrors(json: json) {
            try ImageCopy.copy(
                from: try source(), to: try destination(), options: try registry.options(upload: upload),
                created: created, diagnostics: try progress.diagnostics(quiet: quiet))
        }
        try reportingErrors(json: json) {
            let metadata = r.metadata
            try handOff(
                digest: r.digest, metadata: metadata, platforms: r.platforms,
                outputs: [("image", metadata["image.name"]?.stringValue ?? "")], digestfile: digestfile,
                metadataFile: metadataFile)
        }
        if json {
            printOut(JSONValue.encodeString(r.json))
            return
        }
        guard !quiet else { return }
        if let p = r.pushed, p.unchanged {
            printOut("unchanged: \(r.destination) already is \(r.digest)")
        } else {
            printOut("\(verb) \(r.source) -> \(r.destination)")
        }
        printOut("  digest   \(r.digest)")
        if let p = r.pushed, !p.unchanged {
            printOut(
                "  blobs    \(p.uploaded) uploaded (\(p.uploadedBytes) bytes), \(p.mounted) mounted, \(p.existed) "
                    + "already there"
            )
        }
    }
}

/// Where a registry is meant (pull's source, push's destination), a name without a transport
/// is a registry name: docker:// may be left out (`localhost:5000/ai/app:v1`).
func registryImageReference(_ text: String) throws -> ImageReference {
    if ImageReference.transportPrefix(of: text) != nil { return try imageReference(text) }
    do { return .registry(try RegistryReference.parse(text)) } catch { throw StampError.usage("\(error)") }
}

struct PushCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Push an image (an oci-archive stamp wrote, any local image) to a registry as it is.",
        discussion: """
            Blobs the repository has are skipped, blobs of another repository of the same registry are \
            mounted, the rest uploaded (monolithic when small, in chunks when large); then the platform \
            manifests, the index, and last the tag. Pushing the same image again changes nothing. \
            Prints the pushed digest.

            Example:
              stamp push anything-llm-v2.1-canary.tar \\
                         docker://registry.corp.local/ai/anything-llm:v2.1-canary
            """
    )

    @Argument(help: "The image: oci-archive:TAR[:REF], oci:DIR[:REF], docker-archive:TAR, a path, or docker://…")
    var source: String

    @Argument(help: "Where to: docker://HOST[:PORT]/REPO[:TAG] (docker:// may be left out).")
    var destination: String

    @OptionGroup var copy: CopyFlags

    @OptionGroup(title: "Upload")
    var upload: UploadFlags

    func run() throws {
        try copy.run(
            { try imageReference(source) },
            to: {
                let dest = try registryImageReference(destination)
                guard let r = dest.registry else {
                    throw StampError.usage(
                        "push writes to a registry: docker://HOST/REPO:TAG (to write a file, use stamp pull or build)")
                }
                // A registry would file an untagged push under `latest`: said, never assumed.
                guard r.tag != nil || r.digest != nil else {
                    throw StampError.usage("\(destination) names no tag: add :TAG; :latest if latest is meant")
                }
                return dest
            }, created: Timestamp(epoch: 0), verb: "pushed", upload: upload)
    }
}

struct PullCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Save a registry image to a local image, every blob checked against its digest.",
        discussion: """
            All platforms of the image are saved, byte for byte (the index digest stays the same). \
            A blob whose bytes do not match its digest fails the pull and nothing is written.

            Example:
              stamp pull docker://docker.io/mintplexlabs/anything-llm:1.16.0 \\
                         oci-archive:anything-llm.tar
              # docker:// may be left out here:
              stamp pull mintplexlabs/anything-llm:1.16.0 anything-llm.tar
            """
    )

    @Argument(help: "The image: docker://HOST[:PORT]/REPO[:TAG|@DIGEST] (Docker Hub short names work).")
    var source: String

    @Argument(help: "Where to: oci-archive:TAR[:REF] (default for a plain path), oci:DIR[:REF], docker-archive:TAR.")
    var destination: String

    @OptionGroup var copy: CopyFlags

    func run() throws {
        let epoch = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"].flatMap { Int64($0) } ?? 0
        try copy.run(
            { try registryImageReference(source) }, to: { try imageReference(destination) },
            created: Timestamp(epoch: epoch), verb: "saved")
    }
}
