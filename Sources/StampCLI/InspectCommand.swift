import ArgumentParser
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

    func run() throws {
        let doc = try reportingErrors(json: json) {
            try Inspector.inspect(try imageReference(image), registry: try registry.options())
        }
        printOut(json ? JSONValue.encodeString(doc) : Inspector.render(doc))
    }
}
