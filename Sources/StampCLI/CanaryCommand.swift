import ArgumentParser
import Canary
import Foundation
import IO
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
                  --gateway istio-system/public --host ai.corp.local --weight 5 \\
                  --canary-storage fresh --output deploy/
              kubectl apply -k deploy/
              stamp canary weight 25 deploy/     # then: promote deploy/ or rollback deploy/
              stamp canary next --canary v2.2.lock.json deploy/   # the next cycle
            """,
        subcommands: [
            CanaryRender.self, CanaryStart.self, CanaryWeight.self, CanaryPromote.self, CanaryRollback.self,
            CanaryNext.self, CanaryCheck.self, CanaryStatusCommand.self, CanaryAnalyze.self,
        ]
    )
}

struct CanaryRender: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Write a Kustomize folder: both versions pinned by digest, storage apart, a sticky traffic split.",
        discussion: """
            What the app needs comes from the stamp records (lock file, build --json, metadata \
            file): port, health check, data folder, settings file, user, identity keys. Each \
            version runs with its own claim (the canary's fresh or cloned from the stable's, under \
            a name of its own per version), one replica per claim; both read JWT_SECRET, SIG_KEY, \
            SIG_SALT (and AUTH_TOKEN) from one Secret. A fresh canary of anything-llm needs \
            AUTH_TOKEN in it (an empty instance accepts every request; --allow-open-canary):

              kubectl create secret generic anything-llm-identity \\
                  --from-literal=JWT_SECRET=… --from-literal=SIG_KEY=… \\
                  --from-literal=SIG_SALT=… --from-literal=AUTH_TOKEN=…

            Routing: istio binds the VirtualService to --gateway and the mesh (the external host \
            and the Service's name); gateway-api attaches to --gateway NAMESPACE/NAME[:SECTION]. \
            The header reaches the canary whatever the weight (--header x-canary-flag=@file keeps \
            its value secret); a cookie keeps each client on the version it got (not argo-rollouts). \
            Pods pass Pod Security "restricted"; the startup probe allows --startup-budget.

            Examples:
              stamp canary render --stable v2.0.lock.json --canary v2.1.lock.json \\
                  --gateway istio-system/public --host ai.corp.local --weight 5 \\
                  --canary-storage fresh --output deploy/
              stamp canary render --stable v2.0.lock.json --canary v2.1.lock.json \\
                  --mesh gateway-api --gateway infra/public:https \\
                  --host ai.corp.local --canary-storage clone --output deploy/
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

    @Option(help: "The host name clients use (lower-case).")
    var host: String

    @Option(help: "Percent of requests without the header (or a cookie) sent to the canary.")
    var weight = 5

    @Option(
        help: ArgumentHelp(
            "The header that sends a request to the canary; VALUE @FILE reads it from a file.",
            valueName: "name=value"))
    var header = "x-canary-flag=enabled"

    @Option(help: "istio, gateway-api or argo-rollouts.")
    var mesh = "istio"

    @Option(
        help: ArgumentHelp(
            "The Gateway the route binds to: NAMESPACE/NAME[:SECTION] (istio: mesh for in-mesh only).",
            valueName: "gateway"))
    var gateway: String?

    @Option(help: "The namespace of every object (set in kustomization.yaml).")
    var namespace: String?

    @Option(
        help: ArgumentHelp(
            "Replicas of stable and canary (1 per claim for a stateful app).", valueName: "stable:canary"))
    var replicas = "1:1"

    @Option(help: "The canary's storage: fresh (empty) or clone (of the stable's claim). Required.")
    var canaryStorage: String?

    @Option(help: "Size of each storage claim.")
    var storageSize = "10Gi"

    @Option(help: "The storage class of the claims (default: the cluster's).")
    var storageClass: String?

    @Option(help: "ReadWriteOnce, or ReadWriteOncePod (the API server lets one pod write).")
    var accessMode = "ReadWriteOnce"

    @Option(help: "The app's name: prefix of every object.")
    var app = "anything-llm"

    @Option(help: "The app's facts when no stamp record says them: anything-llm or generic.")
    var profile: String?

    @Option(help: "The Secret both versions read their identity keys from (default APP-identity).")
    var identitySecret: String?

    @Option(help: "Readiness: exec (the stamped health-check script) or http (GET on the ping path).")
    var probe: String?

    @Option(help: "How long the app may take to start (migrations) before the kubelet restarts it.")
    var startupBudget = "5m"

    @Option(
        help: ArgumentHelp("Memory request and limit (default from the app's facts).", valueName: "request[:limit]"))
    var memory: String?

    @Option(help: ArgumentHelp("CPU request and limit.", valueName: "request[:limit]"))
    var cpu: String?

    @Flag(help: "No sticky cookie: each request is split on its own.")
    var noSticky = false

    @Flag(help: "Run a fresh canary without the auth key required (it accepts every request until set up).")
    var allowOpenCanary = false

    @Flag(help: "Write no NetworkPolicy.")
    var noNetworkPolicy = false

    @Option(
        help: ArgumentHelp(
            "argo-rollouts: Prometheus' address for a background analysis (analyze's queries and thresholds) "
                + "that aborts a bad canary without the pipeline.", valueName: "url"))
    var prometheus: String?

    @OptionGroup(title: "Health check")
    var health: HealthOptions

    @Option(help: "The folder to write (created; files stamp wrote before are replaced, others kept).")
    var output: String

    @Flag(help: "Print one JSON document.")
    var json = false

    func run() throws {
        let written = try reportingErrors(json: json) { () throws -> (CanarySpec, [String]) in
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
            let value =
                spec.headerIsSecret ? "(the value in \(header.split(separator: "@").last ?? ""))" : spec.headerValue
            printOut("wrote \(files.count) files to \(output) (\(spec.mesh.rawValue)):")
            printOut("  stable  \(spec.stable.version)  \(spec.stable.reference)")
            if spec.mesh == .argoRollouts {
                printOut("  canary  \(spec.canary.version)  \(spec.canary.reference)  recorded, not started")
                printOut(
                    "next: kubectl apply -k \(output)   (Argo skips the steps on a Rollout's creation: the stable "
                        + "comes up alone)")
                printOut("then: stamp canary start \(output) && kubectl apply -k \(output)")
            } else {
                printOut(
                    "  canary  \(spec.canary.version)  \(spec.canary.reference)  \(spec.weight)% of traffic"
                        + (spec.sticky ? " (sticky)" : "") + ", all requests with \(spec.headerName): \(value)")
                printOut("next: kubectl apply -k \(output)")
            }
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
        let probeKind = try probe.map { p in
            guard let k = ProbeKind(rawValue: p) else { throw StampError.usage("--probe \(p): exec or http") }
            return k
        }
        guard let access = AccessMode(rawValue: accessMode) else {
            throw StampError.usage("--access-mode \(accessMode): ReadWriteOnce or ReadWriteOncePod")
        }
        let counts = replicas.split(separator: ":").map { Int($0) }
        guard counts.count == 2, let s = counts[0], let c = counts[1] else {
            throw StampError.usage("--replicas \(replicas): STABLE:CANARY, e.g. 1:1")
        }
        let h = try canaryHeader(header)
        var spec = CanarySpec(
            host: host, weight: weight, storage: storage,
            stable: try ReleaseImage.load(stable, role: "--stable", version: stableVersion, allowTag: allowTag),
            canary: try ReleaseImage.load(canary, role: "--canary", version: canaryVersion, allowTag: allowTag))
        if let profile {
            guard let f = AppFacts.named(profile) else {
                throw StampError.usage(
                    "--profile \(profile): " + AppFacts.known.map(\.profile).joined(separator: " or "))
            }
            if spec.canary.facts == nil && spec.stable.facts == nil { spec.facts = f }
        }
        spec.mesh = m
        spec.app = app
        spec.namespace = namespace
        spec.gateway = try gateway.map(GatewayRef.parse)
        spec.headerName = h.name
        spec.headerValue = h.value
        spec.headerIsSecret = h.secret
        spec.stableReplicas = s
        spec.canaryReplicas = c
        spec.storageSize = storageSize
        spec.storageClass = storageClass
        spec.accessMode = access
        spec.identitySecret = identitySecret
        spec.probe = probeKind
        spec.sticky = !noSticky
        spec.allowOpenCanary = allowOpenCanary
        spec.networkPolicy = !noNetworkPolicy
        spec.prometheus = prometheus
        if let budget = try HealthPlan.duration(startupBudget, "--startup-budget") {
            spec.startupBudget = Int(min(budget / 1_000_000_000, 1_000_000))
        }
        if let memory {
            let parts = memory.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            spec.memoryRequest = try quantity(parts[0], "--memory")
            spec.memoryLimit = try parts.count > 1 ? quantity(parts[1], "--memory") : spec.memoryLimit
        }
        if let cpu {
            let parts = cpu.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            spec.cpuRequest = try quantity(parts[0], "--cpu")
            spec.cpuLimit = try parts.count > 1 ? quantity(parts[1], "--cpu") : spec.cpuLimit
        }
        if let p = health.healthScript { spec.facts.healthScript = p }
        if let p = health.healthPort { spec.facts.port = p }
        if let p = health.healthPath { spec.facts.healthPath = p }
        func seconds(_ text: String?, _ flag: String, zero: Bool = false) throws -> Int? {
            try HealthPlan.duration(text, flag, zero: zero).map { Int(min(($0 + 999_999_999) / 1_000_000_000, 86_400)) }
        }
        if let v = try seconds(health.healthInterval, "--health-interval") { spec.facts.interval = v }
        if let v = try seconds(health.healthTimeout, "--health-timeout") { spec.facts.timeout = v }
        if let v = try seconds(health.healthStartPeriod, "--health-start-period", zero: true) {
            spec.facts.startPeriod = v
        }
        if let v = health.healthRetries {
            guard (0...1000).contains(v) else { throw StampError.usage("--health-retries: 0 to 1000") }
            spec.facts.retries = v
        }
        return spec
    }

    /// A Kubernetes quantity (`512Mi`, `0.5`, `250m`).
    func quantity(_ text: String, _ flag: String) throws -> String {
        guard text.range(of: #"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"#, options: .regularExpression) != nil else {
            throw StampError.usage("\(flag) \(text): a Kubernetes quantity like 512Mi, 2Gi, 250m or 1")
        }
        return text
    }

    func imageJSON(_ i: ReleaseImage) -> JSONValue {
        .object([("image", .string(i.reference)), ("version", .string(i.version))])
    }
}

/// `--header NAME=VALUE`: the header that selects the canary (its name lowercased); a VALUE of
/// `@FILE` is read from the file (one line, its newline dropped) and is a secret, never printed.
func canaryHeader(_ text: String) throws -> (name: String, value: String, secret: Bool) {
    guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
        throw StampError.usage("--header \(text.prefix(80)): NAME=VALUE, e.g. x-canary-flag=enabled")
    }
    let name = String(text[..<eq]).lowercased()
    let value = String(text[text.index(after: eq)...])
    guard value.hasPrefix("@") else { return (name, value, false) }
    let file = String(value.dropFirst())
    guard Path.exists(file), !Path.isDirectory(file) else {
        throw StampError.usage("--header \(name)=@\(file): no such file")
    }
    let bytes: [UInt8]
    do { bytes = try ReadableFile(file).readAll(limit: 4096) } catch {
        throw StampError.usage("--header \(name)=@\(file): cannot be read (at most 4 KiB): \(error)")
    }
    var secret = String(decoding: bytes, as: UTF8.self)
    while secret.hasSuffix("\n") || secret.hasSuffix("\r") { secret.removeLast() }
    guard !secret.isEmpty, secret.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else {
        throw StampError.usage("--header \(name)=@\(file): the file must hold one printable word (no spaces)")
    }
    return (name, secret, true)
}

/// What the folder commands share: the folder, --json, and the write after the checks.
struct CanaryFolderOptions: ParsableArguments {
    @Argument(help: "The folder stamp canary render wrote.")
    var folder: String

    @Flag(help: "Accept images referenced by tag in the folder.")
    var allowTag = false

    @Flag(help: "Print one JSON document.")
    var json = false

    /// Runs `change`, writes, and reports what changed, what is left to do and, for a forced
    /// write (rollback), what check still finds.
    func apply(_ action: String, force: Bool = false, _ change: (CanaryFolder) throws -> [String]) throws {
        let (folder, saved, todo) = try reportingErrors(json: json) {
            () throws -> (CanaryFolder, CanaryFolder.Saved, [String]) in
            let f = try CanaryFolder(path: self.folder, lock: .exclusive)
            let todo = try change(f)
            return (f, try f.save(allowTag: allowTag, force: force), todo)
        }
        for p in saved.problems { printError("stamp: warning: \(p)") }
        for n in saved.notes { printError("stamp: note: \(n)") }
        if json {
            printOut(
                JSONValue.encodeString(
                    .object(
                        [
                            ("schemaVersion", JSONValue(Int64(OutputSchema.version))), ("folder", .string(self.folder)),
                            ("action", .string(action)),
                            ("weight", folder.weight.map { JSONValue(Int64($0)) } ?? .null),
                        ]
                            + (folder.firstStepWeight.map { [("firstStepWeight", JSONValue(Int64($0)))] } ?? []) + [
                                ("changed", .array(saved.changed.map { .string($0) })),
                                ("next", .array(todo.map { .string($0) })),
                                ("warnings", .array(saved.problems.map { .string($0) })),
                            ])))
        } else {
            printOut(
                "\(action): canary weight now \(folder.weight.map { "\($0)%" } ?? "unknown")"
                    + (folder.firstStepWeight.map { folder.weight == 0 ? " (its first step: \($0)% once started)" : "" }
                        ?? "") + "; changed "
                    + (saved.changed.isEmpty ? "nothing" : saved.changed.joined(separator: ", ")))
            for t in todo { printOut("next: \(t)") }
        }
    }
}

struct CanaryWeight: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weight",
        abstract: "Set the percent of requests without the header that go to the canary.",
        discussion: """
            Rewrites only the weights, in place (the two always sum to 100; a client holding the \
            canary's cookie stays on it while the weight is above 0). argo-rollouts: only before \
            the canary starts (a change of steps restarts them; Argo advances with \
            kubectl argo rollouts promote).

            Example:
              stamp canary weight 25 deploy/ && kubectl apply -k deploy/
            """
    )

    @Argument(help: "0 to 100.")
    var percent: Int

    @OptionGroup var options: CanaryFolderOptions

    func run() throws {
        try options.apply("weight") {
            try $0.setWeight(percent)
            return []
        }
    }
}

struct CanaryPromote: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote",
        abstract: "Make the canary the stable version: stable runs the canary's digest on the stable's data.",
        discussion: """
            istio, gateway-api: the stable Deployment takes the canary's image and version (its \
            claim, the production data, stays); the weight goes to 0 and the stable's cookie \
            names the new version. The canary Deployment keeps running on its own data for \
            testers until stamp canary next. argo-rollouts: the promotion is the controller's \
            (kubectl argo rollouts promote --full, printed); the folder records the new stable \
            without touching the steps or the template.
            """
    )

    @OptionGroup var options: CanaryFolderOptions

    func run() throws { try options.apply("promote") { try $0.promote() } }
}

struct CanaryRollback: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Send every request without the header back to stable (weight 0). Always writes.",
        discussion: """
            The header route stays, so testers can still reach the canary; clients holding the \
            canary's cookie go to stable too. With argo-rollouts the template goes back to the \
            stable's, which Argo takes back at once. Rollback only lowers exposure: it writes \
            even when check finds something else wrong, and prints it as a warning.
            """
    )

    @OptionGroup var options: CanaryFolderOptions

    func run() throws { try options.apply("rollback", force: true) { try $0.rollback() } }
}

struct CanaryNext: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "next",
        abstract: "Start the next canary in a folder: a new image on a new claim, your edits kept.",
        discussion: """
            The canary takes the new image and version, in place (every other byte of stamp's \
            files stays as you left it), and a claim of its own named after the new version: an \
            existing claim is never changed (its spec is immutable) and the last canary's data is \
            not reused. --canary-storage defaults to what the last canary had.

            Example:
              stamp canary next --canary v2.2.lock.json deploy/ && kubectl apply -k deploy/
            """
    )

    @Option(
        help: ArgumentHelp(
            "The new canary: a stamp lock file, build --json, or NAME@sha256:….", valueName: "lock|image"))
    var canary: String

    @Option(help: "Its version, when --canary does not say it.")
    var canaryVersion: String?

    @Option(help: "fresh or clone (default: as the last canary).")
    var canaryStorage: String?

    @Option(help: "Percent of requests without the header sent to the new canary.")
    var weight = 5

    @OptionGroup var options: CanaryFolderOptions

    func run() throws {
        try options.apply("next") { f in
            let image = try ReleaseImage.load(
                canary, role: "--canary", version: canaryVersion, allowTag: options.allowTag)
            let storage = try canaryStorage.map { t in
                guard let s = CanaryStorage(rawValue: t) else {
                    throw StampError.usage("--canary-storage \(t): fresh or clone")
                }
                return s
            }
            guard (0...100).contains(weight) else { throw StampError.usage("--weight \(weight): 0 to 100") }
            let versions = f.versions
            if image.version == versions.stable {
                throw StampError.usage("--canary \(image.version) is the stable version already")
            }
            return try f.next(NextCanary(image: image, storage: storage, weight: weight))
        }
    }
}

struct CanaryStart: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "argo-rollouts: start the recorded canary (the Rollout's template takes its image).",
        discussion: """
            Argo Rollouts skips every step when it creates a Rollout, so render writes it at the \
            stable image: apply that first, then start the canary with a template change.

            Example:
              kubectl apply -k deploy/ && stamp canary start deploy/ && kubectl apply -k deploy/
            """
    )

    @OptionGroup var options: CanaryFolderOptions

    func run() throws { try options.apply("start") { try $0.start() } }
}

struct CanaryCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check what a canary folder applies: digests, one identity Secret, storage apart, routes.",
        discussion: """
            Checks the Kustomize build (kubectl kustomize, so patches and name prefixes count; the \
            files as written where kubectl is missing, with a note) against what the controllers \
            do: pinned images, one Secret for the identity keys read by both, no volume of the \
            stable's (claim, bound volume, host path, NFS export) in the canary, one replica per \
            claim, no ephemeral state, Services and subsets selecting their own track, routes \
            bound to a gateway, the header rule first and to the canary, weights summing to 100. \
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
        let f = try reportingErrors(json: json) { try CanaryFolder(path: folder, lock: .shared) }
        let (problems, notes) = f.check(allowTag: allowTag)
        for n in notes { printError("stamp: note: \(n)") }
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
