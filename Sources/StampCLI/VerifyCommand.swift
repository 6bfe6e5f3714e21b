import ArgumentParser
import Layers
import OCI
import StampCore

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check an image for CI: blobs, diff_ids, history, and the stamp's coherence.",
        discussion: """
            Re-reads every blob: digest and size of each document and layer, each layer decompressed \
            to check its diff_id, history against layers, and that version.txt, version.json, labels, \
            annotations and env agree. Prints one line per finding.

            Exit status: 0 when clean, 1 with findings, 2 when it cannot run.

            Example:
              stamp verify oci-archive:anything-llm-v2.1-canary.tar
            """
    )

    @Argument(
        help: ArgumentHelp(
            "The image: oci:DIR[:REF], oci-archive:TAR[:REF], docker-archive:TAR, docker://HOST/REPO[:TAG|@DIGEST], "
                + "or a path.")
    )
    var image: String

    @OptionGroup(title: "Registry")
    var registry: RegistryFlags

    @Flag(help: "Check blobs and documents only, not the stamp (for unstamped images).")
    var integrityOnly = false

    @Flag(help: "Print one JSON document with the findings.")
    var json = false

    @Flag(
        name: [.short, .long],
        help: "Print only the findings (no progress, no summary); the exit status says the rest.")
    var quiet = false

    @OptionGroup var progress: ProgressFlag

    func run() throws {
        MemoryPolicy.fewArenas()
        let (ref, access, mode) = try reportingErrors {
            (try imageReference(image), try registry.options(), quiet ? ProgressMode.quiet : try progress.mode)
        }
        let report = Verifier.verify(
            ref,
            options: .init(
                integrityOnly: integrityOnly, registry: access,
                progress: mode))
        if json {
            printOut(JSONValue.encodeString(report.json))
        } else if let failure = report.failure {
            printError("stamp: error: \(failure)")
        } else {
            for f in report.findings { printOut(f.message) }
            if quiet {
            } else if report.ok {
                let v = report.stamp?.version.map { ", stamp \($0)" } ?? ""
                printError(
                    "ok: \(report.reference): \(report.platforms.map(\.platform).joined(separator: ", ")), "
                        + "\(report.blobsChecked) blobs, \(report.bytesChecked) layer bytes checked\(v)"
                )
            } else {
                printError("\(report.findings.count) finding(s) in \(report.reference)")
            }
        }
        if report.failure != nil { throw ExitCode(2) }
        if !report.ok { throw ExitCode(1) }
    }
}
