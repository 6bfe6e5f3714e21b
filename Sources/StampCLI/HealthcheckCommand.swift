import ArgumentParser
import StampCore

struct HealthcheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "healthcheck",
        abstract: "Print the enhanced health-check script, for baking it your own way.",
        discussion: """
            The script stamp puts into images: POSIX sh, probes the app with curl, wget or node \
            (bounded by a timeout whatever the client), and prints one line of application/health+json \
            with the version, revision and build time read from version.json. Exit 0 on pass, 1 otherwise.

            Example:
              stamp healthcheck > health-check-enhanced.sh
              stamp healthcheck --profile generic --health-port 8080 \\
                                --health-path /healthz --version-json /srv/version.json
            """
    )

    @Option(help: "anything-llm (default) or generic.")
    var profile: String?

    @Option(name: .customLong("version-json"), help: "Where the script reads version.json.")
    var versionJSON: String?

    @OptionGroup(title: "Health check")
    var health: HealthOptions

    func run() throws {
        let text = try reportingErrors { () throws -> String in
            let s = StampSettings.from(flags: [self])
            return try StampPlan.healthScript(s)
        }
        print(text, terminator: "")
    }
}
