import ArgumentParser
import Foundation
import OCI
import StampCore

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show an image: platforms, digests, labels, stamp, layers, history.",
        discussion: """
            Example:
              stamp inspect oci-archive:anything-llm-v2.1-canary.tar
              stamp inspect --json out.tar | jq -r '.stamp.version'
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

    @Flag(help: "Print one JSON document instead of the summary.")
    var json = false

    @Flag(
        help: ArgumentHelp(
            "Print the index or manifest as stored, byte for byte (with --platform, that platform's manifest), "
                + "as skopeo inspect --raw does."))
    var raw = false

    @Flag(help: "Print the config as stored, byte for byte (of the one platform, or of --platform).")
    var config = false

    @Option(help: ArgumentHelp("Show only this platform's image.", valueName: "os/arch[/variant]"))
    var platform: String?

    func run() throws {
        if raw || config {
            guard !json else { throw ValidationError("--json is for the summary; --raw and --config print documents") }
            let bytes = try reportingErrors {
                try Inspector.raw(
                    try imageReference(image), registry: try registry.options(), platform: platform, config: config)
            }
            FileHandle.standardOutput.write(Data(bytes))
            return
        }
        let doc = try reportingErrors(json: json) {
            try Inspector.inspect(try imageReference(image), registry: try registry.options(), platform: platform)
        }
        printOut(json ? JSONValue.encodeString(doc) : Inspector.render(doc))
    }
}
