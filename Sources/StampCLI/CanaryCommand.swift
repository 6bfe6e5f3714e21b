import ArgumentParser
import Canary
import Foundation
import OCI
import StampCore

struct CanaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "canary",
        abstract: "Run a stamped version beside the stable one: manifests, traffic weight, promotion, rollback.",
        discussion: """
            The three steps after a stamped image, written from what stamp knows (digests, versions, \
            the health check, the app's port and storage) and checked before anything is written:

              stamp canary render --stable stable.lock.json --canary canary.lock.json \\
                  --host ai.corp.local --weight 5 --canary-storage fresh --output deploy/
              kubectl apply -k deploy/
              stamp canary weight 25 deploy/     # then: promote deploy/ or rollback deploy/
            """,
        subcommands: [
            CanaryRender.self, CanaryWeight.self, CanaryPromote.self, CanaryRollback.self, CanaryCheck.self,
            CanaryStatusCommand.self, CanaryAnalyze.self,
        ]
    )
}

struct CanaryRender: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Write a Kustomize folder: two Deployments pinned by digest, their storage, the traffic split.",
        discussion: """
            Each version runs in its own Deployment (APP-stable, APP-canary; pods labelled app, track, \
            version and app.kubernetes.io/*), with its own PersistentVolumeClaim: the canary never \
            mounts the stable's storage (--canary-storage: fresh, or clone of the stable's). Both \
            read JWT_SECRET, SIG_KEY, SIG_SALT (and AUTH_TOKEN when set) from one Secret, so a \
            session opened on one version is valid on the other: create it once with

              kubectl create secret generic anything-llm-identity \\
                  --from-literal=JWT_SECRET=… --from-literal=SIG_KEY=… \\
                  --from-literal=SIG_SALT=…

            Probes are the image's health check (Kubernetes does not run HEALTHCHECK): the stamped \
            script as an exec probe, or HTTP on the ping path (--probe http). Requests with the \
            header reach the canary whatever the weight.

            Examples:
              stamp canary render --stable v2.0.lock.json --canary v2.1.lock.json \\
                  --host ai.corp.local --weight 5 --canary-storage fresh --output deploy/
              stamp canary render --stable reg.corp/ai/llm@sha256:… \\
                  --stable-version v2.0 \\
                  --canary reg.corp/ai/llm@sha256:… --canary-version v2.1 \\
                  --mesh gateway-api --gateway public --host ai.corp.local \\
                  --canary-storage clone --output deploy/
            """
    )

    @Option(
        help: ArgumentHelp(
            "The stable image: a stamp lock file, build --json, or NAME@sha256:….", valueName: "lock|image"))
    var stable: String

    @Option(help: ArgumentHelp("The canary image, in the same forms.", valueName: "lock|image"))
    var canary: String

    @Option(help: "The stable's version, when --stable does not say it.")
    var stableVersion: String?

    @Option(help: "The canary's version, when --canary does not say it.")
    var canaryVersion: String?

    @Flag(help: "Accept an image given by tag alone (a tag can move between render and rollout).")
    var allowTag = false

    @Option(help: "The host name clients use (the route's host).")
    var host: String

    @Option(help: "Percent of requests without the header sent to the canary.")
    var weight = 5

    @Option(help: ArgumentHelp("The header that sends a request to the canary.", valueName: "name=value"))
    var header = "x-canary-flag=enabled"

    @Option(help: "istio, gateway-api or argo-rollouts.")
    var mesh = "istio"

    @Option(help: "The Gateway the route binds to (required for gateway-api).")
    var gateway: String?

    @Option(help: "The namespace of every object (set in kustomization.yaml).")
    var namespace: String?

    @Option(help: ArgumentHelp("Replicas of stable and canary.", valueName: "stable:canary"))
    var replicas = "1:1"

    @Option(help: "The canary's storage: fresh (empty) or clone (of the stable's claim). Required.")
    var canaryStorage: String?

    @Option(help: "Size of each storage claim.")
    var storageSize = "10Gi"

    @Option(help: "The storage class of the claims (default: the cluster's).")
    var storageClass: String?

    @Option(help: "The app's name: prefix of every object.")
    var app = "anything-llm"

    @Option(help: "The Secret both versions read their identity keys from (default APP-identity).")
    var identitySecret: String?

    @Option(help: "exec (the stamped health-check script) or http (GET on the ping path).")
    var probe = "exec"

    @OptionGroup(title: "Health check")
    var health: HealthOptions

    @Option(help: "The folder to write (created; files stamp wrote before are replaced, others kept).")
    var output: String

    @Flag(help: "Print one JSON document.")
    var json = false

    func run() throws {
        let written = try reportingErrors { () throws -> (CanarySpec, [String]) in
            let spec = try makeSpec()
            return (spec, try CanaryFolder.render(spec, into: output, allowTag: allowTag))
        }
        let (spec, files) = written
        if json {
            printOut(
                JSONValue.encodeString(
                    .object([
                        ("schemaVersion", JSONValue(Int64(OutputSchema.version))), ("output", .string(output)),
                        ("mesh", .string(spec.mesh.rawValue)), ("weight", JSONValue(Int64(spec.weight))),
                        ("stable", imageJSON(spec.stable)), ("canary", imageJSON(spec.canary)),
                        ("files", .array(files.map { .string($0) })),
                    ])))
        } else {
            printOut("wrote \(files.count) files to \(output) (\(spec.mesh.rawValue)):")
            printOut("  stable  \(spec.stable.version)  \(spec.stable.reference)")
            printOut(
                "  canary  \(spec.canary.version)  \(spec.canary.reference)  \(spec.weight)% of traffic, "
                    + "all requests with \(spec.headerName): \(spec.headerValue)")
            printOut("next: kubectl apply -k \(output)")
        }
    }

    func makeSpec() throws -> CanarySpec {
        guard let m = Mesh(rawValue: mesh) else {
            throw StampError.usage("--mesh \(mesh): istio, gateway-api or argo-rollouts")
        }
        guard let storageText = canaryStorage else {
            throw StampError.usage(
                "--canary-storage: choose fresh (an empty claim) or clone (a copy of the stable's data); the canary "
                    + "never shares the stable's claim")
        }
        guard let storage = CanaryStorage(rawValue: storageText) else {
            throw StampError.usage("--canary-storage \(storageText): fresh or clone")
        }
        guard let probeKind = ProbeKind(rawValue: probe) else {
            throw StampError.usage("--probe \(probe): exec or http")
        }
        let counts = replicas.split(separator: ":").map { Int($0) }
        guard counts.count == 2, let s = counts[0], let c = counts[1] else {
            throw StampError.usage("--replicas \(replicas): STABLE:CANARY, e.g. 3:1")
        }
        let (headerName, headerValue) = try canaryHeader(header)
        var spec = CanarySpec(
            host: host, weight: weight, storage: storage,
            stable: try ReleaseImage.load(stable, role: "--stable", version: stableVersion, allowTag: allowTag),
            canary: try ReleaseImage.load(canary, role: "--canary", version: canaryVersion, allowTag: allowTag))
        spec.mesh = m
        spec.app = app
        spec.namespace = namespace
        spec.gateway = gateway
        spec.headerName = headerName
        spec.headerValue = headerValue
        spec.stableReplicas = s
        spec.canaryReplicas = c
        spec.storageSize = storageSize
        spec.storageClass = storageClass
        spec.identitySecret = identitySecret
        spec.probe = probeKind
        if let p = health.healthScript { spec.healthScript = p }
        if let p = health.healthPort { spec.port = p }
        if let p = health.healthPath { spec.pingPath = p }
        func seconds(_ text: String?, _ flag: String, zero: Bool = false) throws -> Int? {
            try HealthPlan.duration(text, flag, zero: zero).map { Int(($0 + 999_999_999) / 1_000_000_000) }
        }
        if let v = try seconds(health.healthInterval, "--health-interval") { spec.interval = v }
        if let v = try seconds(health.healthTimeout, "--health-timeout") { spec.timeout = v }
        if let v = try seconds(health.healthStartPeriod, "--health-start-period", zero: true) { spec.startPeriod = v }
        if let v = health.healthRetries { spec.retries = v }
        return spec
    }

    func imageJSON(_ i: ReleaseImage) -> JSONValue {
        .object([("image", .string(i.reference)), ("version", .string(i.version))])
    }
}

/// `--header NAME=VALUE`: the header that selects the canary (its name lowercased).
func canaryHeader(_ text: String) throws -> (name: String, value: String) {
    guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
        throw StampError.usage("--header \(text): NAME=VALUE, e.g. x-canary-flag=enabled")
    }
    return (String(text[..<eq]).lowercased(), String(text[text.index(after: eq)...]))
}

/// What the three folder commands share: the folder, --json, and the write after the checks.
struct CanaryFolderOptions: ParsableArguments {
    @Argument(help: "The folder stamp canary render wrote.")
    var folder: String

    @Flag(help: "Accept images referenced by tag in the folder.")
    var allowTag = false

    @Flag(help: "Print one JSON document.")
    var json = false

    func apply(_ action: String, _ change: (CanaryFolder) throws -> Void) throws {
        let (folder, files) = try reportingErrors { () throws -> (CanaryFolder, [String]) in
            let f = try CanaryFolder(path: self.folder)
            try change(f)
            return (f, try f.save(allowTag: allowTag))
        }
        if json {
            printOut(
                JSONValue.encodeString(
                    .object([
                        ("schemaVersion", JSONValue(Int64(OutputSchema.version))), ("folder", .string(self.folder)),
                        ("action", .string(action)), ("weight", folder.weight.map { JSONValue(Int64($0)) } ?? .null),
                        ("changed", .array(files.map { .string($0) })),
                    ])))
        } else {
            printOut(
                "\(action): canary weight now \(folder.weight.map { "\($0)%" } ?? "unknown"); changed "
                    + (files.isEmpty ? "nothing" : files.joined(separator: ", ")))
        }
    }
}

struct CanaryWeight: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weight",
        abstract: "Set the percent of requests without the header that go to the canary.",
        discussion: """
            Rewrites only the weights (the two always sum to 100); anything else in the folder stays.

            Example:
              stamp canary weight 25 deploy/ && kubectl apply -k deploy/
            """
    )

    @Argument(help: "0 to 100.")
    var percent: Int

    @OptionGroup var options: CanaryFolderOptions

    func run() throws { try options.apply("weight") { try $0.setWeight(percent) } }
}

struct CanaryPromote: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote",
        abstract: "Make the canary the stable version: stable runs the canary's digest, weight back to 0.",
        discussion: """
            The stable Deployment takes the canary's image and version labels (and the stable subset \
            its version); the weight goes to 0. The canary Deployment is left as it is, for the next \
            canary. With argo-rollouts, the recorded stable image becomes the canary's.
            """
    )

    @OptionGroup var options: CanaryFolderOptions

    func run() throws { try options.apply("promote") { try $0.promote() } }
}

struct CanaryRollback: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Send every request without the header back to stable (weight 0).",
        discussion: """
            The header route stays, so testers can still reach the canary. With argo-rollouts the \
            pod template goes back to the stable image, which makes Argo abort the canary.
            """
    )

    @OptionGroup var options: CanaryFolderOptions

    func run() throws { try options.apply("rollback") { try $0.rollback() } }
}

struct CanaryCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a canary folder: digests, one identity Secret, separate storage, weights, selectors.",
        discussion: """
            What weight, promote and rollback check before they write, for a folder edited by hand. \
            Exit 0 when it holds, 1 with one line per problem.
            """
    )

    @Argument(help: "The folder to check.")
    var folder: String

    @Flag(help: "Accept images referenced by tag.")
    var allowTag = false

    @Flag(help: "Print one JSON document.")
    var json = false

    func run() throws {
        let f = try reportingErrors { try CanaryFolder(path: folder) }
        let problems = f.check(allowTag: allowTag)
        if json {
            printOut(
                JSONValue.encodeString(
                    .object([
                        ("schemaVersion", JSONValue(Int64(OutputSchema.version))), ("folder", .string(folder)),
                        ("ok", .bool(problems.isEmpty)), ("weight", f.weight.map { JSONValue(Int64($0)) } ?? .null),
                        ("problems", .array(problems.map { .string($0) })),
                    ])))
        } else if problems.isEmpty {
            printOut("\(folder): a safe canary (weight \(f.weight.map { "\($0)%" } ?? "unknown"))")
        } else {
            for p in problems { printOut(p) }
        }
        if !problems.isEmpty { throw ExitCode(1) }
    }
}
