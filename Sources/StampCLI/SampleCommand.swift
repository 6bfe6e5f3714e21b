import ArgumentParser
import OCI
import StampCore

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Write a small anything-llm-shaped base image, offline (for demos and tests).",
        discussion: """
            Two platforms (linux/amd64, linux/arm64/v8) behind a nested index with BuildKit-style \
            attestation manifests, a config with Healthcheck, Shell, OnBuild and vendor keys, history \
            with empty layers, and a layer with a whiteout and an opaque directory.

            Example:
              stamp sample --output anything-llm.tar && stamp inspect anything-llm.tar
            """
    )

    @Option(help: "Where to write it.")
    var output: String

    @Option(
        help: "oci-archive (default), oci, docker-archive (docker save, legacy) or docker-archive-oci (Docker 25+).")
    var format: String = SampleImage.Format.ociArchive.rawValue

    @Option(
        name: .customLong("platform"),
        help: "Platforms to include (repeatable). Default: linux/amd64 and linux/arm64/v8.")
    var platforms: [String] = []

    @Option(help: "Compression of the layers: gzip, zstd or none.")
    var compression: String = "gzip"

    @Flag(help: "Leave out the attestation manifests.")
    var noAttestations = false

    @Flag(help: "List the images in index.json itself rather than behind a nested index.")
    var flat = false

    @Option(help: "Put this file into the app layer (for big-layer tests).")
    var extraFile: String?

    func run() throws {
        try reportingErrors {
            guard let f = SampleImage.Format(rawValue: format) else {
                throw StampError.usage(
                    "--format: \"\(format)\" is not one of "
                        + "\(SampleImage.Format.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            guard let c = Compression(rawValue: compression) else {
                throw StampError.usage("--compression: gzip, zstd or none")
            }
            var o = SampleImage.Options()
            if !platforms.isEmpty {
                o.platforms = try platforms.map { p in
                    guard let pl = Platform.parse(p) else {
                        throw StampError.usage("--platform: \"\(p)\" is not OS/ARCH[/VARIANT]")
                    }
                    return pl
                }
            }
            o.compression = [c, c, c]
            o.attestations = !noAttestations
            o.nested = !flat
            o.extraFile = extraFile
            try SampleImage.write(to: output, format: f, options: o)
            let kinds = o.platforms.map(\.description).joined(separator: ", ")
            printError(
                oneLine(
                    "stamp: wrote a sample base (\(f.rawValue), \(kinds)) to \(output); next: stamp build --base "
                        + "\(output) --version v1 --output stamped.tar"))
        }
    }
}
