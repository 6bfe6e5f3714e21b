import ArgumentParser
import Foundation
import OCI
import StampCore

struct DockerfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dockerfile",
        abstract: "Render a Dockerfile and build context that give the same stamp as stamp build.",
        discussion: """
            Writes --output as a folder: a Dockerfile from a built-in template (anything-llm \
            or generic; --template NAME or PATH), a .dockerignore, and under stamp/ the files the \
            stamp layer holds, byte for byte. The Dockerfile pins the base by digest (from a local \
            --base, from --base-digest or from NAME@sha256:...), sets the same labels, env and \
            HEALTHCHECK, and has no RUN step. With --hash-assets (local base) or --assets DIR the \
            hashed frontend and rewritten server files are copied too; the unhashed names they replace \
            stay in the base (a Dockerfile cannot delete without RUN).

            Example:
              stamp dockerfile --base docker.io/mintplexlabs/anything-llm:1.16.0 \\
                               --version v2.1-canary --base-digest sha256:… --output ./ctx
              docker buildx build ./ctx -t registry.example/ai/anything-llm:v2.1-canary
            """
    )

    @Option(
        help: ArgumentHelp(
            "The build context folder to write (Dockerfile, .dockerignore, stamp/). Not from --config: there output "
                + "names an image.",
            valueName: "dir"))
    var output: String?

    @OptionGroup var flags: StampFlags

    @OptionGroup var progress: ProgressFlag

    @Option(help: "The base's digest (sha256:...) when --base names a registry image.")
    var baseDigest: String?

    @Option(help: "A template: a built-in name (anything-llm, generic) or a file path.")
    var template: String?

    func run() throws {
        let result = try reportingErrors { () throws -> DockerfileRenderer.Result in
            var s = try flags.settings()
            guard let out = output, !out.isEmpty else {
                throw StampError.usage("missing --output (the build context folder to write)")
            }
            try refuseTransport(out, "--output", what: "the build context folder")
            guard let base = s.base else { throw StampError.usage("missing --base") }
            s.output = nil
            let plan = try StampPlan.resolve(s, environment: ProcessInfo.processInfo.environment, imageOutput: false)
            return try DockerfileRenderer.render(
                plan, base: base, baseDigest: baseDigest, template: template, output: out,
                diagnostics: try progress.diagnostics())
        }
        printError(
            "wrote \(result.folder)/Dockerfile and \(result.files.count) file(s) under "
                + "\(result.folder)/stamp\(result.pinned ? "" : " (base not pinned)")"
        )
    }
}

/// Where a folder is meant, an image reference is an error, not a folder named after it
/// (`--output oci-archive:x.tar` would otherwise make a folder `oci-archive:x.tar`).
func refuseTransport(_ path: String, _ flag: String, what: String) throws {
    if let t = ImageReference.transportPrefix(of: path) {
        throw StampError.usage("\(flag) \(path): \(what) is a plain path, not an image reference (\(t)...)")
    }
}
