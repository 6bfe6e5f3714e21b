import ArgumentParser
import Canary
import Foundation
import OCI
import Registry
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

struct CanaryStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Ask the live service which versions answer, with and without the header, against the weight.",
        discussion: """
            Sends --requests GETs of /version.json (which stamp publishes) without the header and \
            --header-requests with it, several at a time, none started after --timeout. Reports the \
            versions seen and the canary's share with a 99% confidence interval. Exit 1 when the \
            header does not reach the canary, a version other than the two answers, the split is off \
            the weight beyond chance, or requests fail (an HTML page, a hung server, an error).

            The expected versions and weight come from the folder (--folder deploy/) or from \
            --stable-version, --canary-version and --weight.

            Example:
              stamp canary status --url https://ai.corp.local --folder deploy/
            """
    )

    @Option(help: "The service's base URL (https://ai.corp.local).")
    var url: String

    @Option(help: "The path of the published version.json.")
    var path = "/version.json"

    @Option(help: ArgumentHelp("The header that selects the canary.", valueName: "name=value"))
    var header = "x-canary-flag=enabled"

    @Option(help: "Requests without the header.")
    var requests = 200

    @Option(help: "Requests with the header.")
    var headerRequests = 20

    @Option(help: "A folder stamp canary render wrote: the versions and weight to expect.")
    var folder: String?

    @Option(help: "The stable version to expect (instead of --folder).")
    var stableVersion: String?

    @Option(help: "The canary version to expect (instead of --folder).")
    var canaryVersion: String?

    @Option(help: "The weight to expect, in percent (instead of --folder).")
    var weight: Int?

    @Option(help: "No request starts after this long.")
    var timeout = "30s"

    @Option(help: "Each request's own limit.")
    var requestTimeout = "5s"

    @Option(help: "Requests in flight at once.")
    var concurrency = 8

    @Option(help: ArgumentHelp("Verify the service's TLS certificate.", valueName: "bool"))
    var tlsVerify = true

    @Flag(help: "Print one JSON document.")
    var json = false

    func run() throws {
        let report = try reportingErrors { () throws -> CanaryStatus.Report in
            var expect = CanaryStatus.Expectation(stable: stableVersion, canary: canaryVersion, weight: weight)
            if let folder {
                let f = try CanaryFolder(path: folder)
                let versions = f.versions
                expect.stable = expect.stable ?? versions.stable
                expect.canary = expect.canary ?? versions.canary
                expect.weight = expect.weight ?? f.weight
            }
            guard expect.canary != nil else {
                throw StampError.usage("give --folder, or --canary-version (and --stable-version, --weight)")
            }
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw StampError.usage("--url \(url): an http:// or https:// address")
            }
            guard requests >= 0, headerRequests >= 0, requests + headerRequests > 0, concurrency >= 1 else {
                throw StampError.usage("--requests, --header-requests: 0 or more, not both 0; --concurrency: 1 or more")
            }
            let (name, value) = try canaryHeader(header)
            let total = try HealthPlan.duration(timeout, "--timeout") ?? 30_000_000_000
            let each = try HealthPlan.duration(requestTimeout, "--request-timeout") ?? 5_000_000_000
            let target = (url.hasSuffix("/") ? String(url.dropLast()) : url) + path
            let verify = tlsVerify
            let deadline = Date().addingTimeInterval(Double(total) / 1e9)
            let (plain, withHeader) = CanaryStatus.probe(
                count: requests, headerCount: headerRequests, workers: concurrency, deadline: deadline
            ) { useHeader in
                let left = max(
                    1,
                    min(
                        Int64((each + 999_999_999) / 1_000_000_000),
                        Int64(deadline.timeIntervalSinceNow.rounded(.up)) + 1))
                do {
                    let r = try HTTPGet.get(
                        target, headers: useHeader ? [(name, value)] : [], seconds: left, tlsVerify: verify)
                    return CanaryStatus.outcome(status: r.status, contentType: r.contentType, body: r.body)
                } catch {
                    return .failure("\(error)")
                }
            }
            return CanaryStatus.evaluate(
                plain: plain, withHeader: withHeader, expect: expect, planned: requests + headerRequests)
        }
        if json {
            func counts(_ d: [String: Int]) -> JSONValue {
                .object(d.sorted { $0.key < $1.key }.map { ($0.key, JSONValue(Int64($0.value))) })
            }
            var j: JSONValue = .object([
                ("schemaVersion", JSONValue(Int64(OutputSchema.version))), ("url", .string(url)),
                ("ok", .bool(report.ok)), ("sent", JSONValue(Int64(report.sent))),
                ("planned", JSONValue(Int64(report.planned))),
                ("withoutHeader", counts(report.plain)), ("withHeader", counts(report.withHeader)),
                ("failures", counts(report.failures)),
                ("problems", .array(report.problems.map { .string($0) })),
            ])
            if let w = report.expectation.weight { j["weight"] = JSONValue(Int64(w)) }
            if let s = report.canaryShare, let ci = report.interval {
                j["canaryShare"] = .object([
                    ("observed", .number(String(format: "%.4f", s))), ("low", .number(String(format: "%.4f", ci.low))),
                    ("high", .number(String(format: "%.4f", ci.high))), ("confidence", .number("0.99")),
                ])
            }
            printOut(JSONValue.encodeString(j))
        } else {
            func line(_ d: [String: Int]) -> String {
                d.isEmpty
                    ? "none" : d.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            }
            printOut("\(url): \(report.sent) requests")
            printOut("  without the header: \(line(report.plain))")
            printOut("  with the header:    \(line(report.withHeader))")
            if let s = report.canaryShare, let ci = report.interval {
                printOut(
                    String(
                        format: "  canary share %.1f%% (99%% interval %.1f–%.1f%%), weight %@", s * 100, ci.low * 100,
                        ci.high * 100, report.expectation.weight.map { "\($0)%" } ?? "not given"))
            }
            for p in report.problems { printOut("problem: \(p)") }
            if report.ok { printOut("ok") }
        }
        if !report.ok { throw ExitCode(1) }
    }
}

struct CanaryAnalyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Compare canary and stable from Prometheus: promote (exit 0), rollback (1) or inconclusive (3).",
        discussion: """
            Queries /api/v1/query over the window for each version: Istio's istio_requests_total and \
            istio_request_duration_milliseconds (by destination_version), cAdvisor's \
            container_memory_working_set_bytes (by pod name). Label values are escaped; --query \
            METRIC=PROMQL replaces one (metrics: requests, error_rate, latency_avg, latency_p95, \
            memory; $version, $namespace, $pods are quoted for you, $window is the window).

            Inconclusive: too few requests, a series missing, Prometheus unreachable. Never promote \
            on missing data. Credentials: --prometheus-user with $STAMP_PROMETHEUS_PASSWORD, or \
            $STAMP_PROMETHEUS_TOKEN (a bearer token); never printed.

            Example:
              stamp canary analyze --prometheus http://prometheus:9090 \\
                  --stable v2.0 --canary v2.1-canary --namespace ai --watch 6
            """
    )

    @Option(help: "Prometheus' base URL.")
    var prometheus: String

    @Option(help: "The stable version (its destination_version label).")
    var stable: String

    @Option(help: "The canary version.")
    var canary: String

    @Option(help: "The namespace of both Deployments.")
    var namespace: String?

    @Option(help: "The app (its destination_app label and the prefix of its pod names).")
    var app = "anything-llm"

    @Option(help: "The stable's pods, a regular expression of names (default APP-stable-.*).")
    var stablePods: String?

    @Option(help: "The canary's pods (default APP-canary-.*).")
    var canaryPods: String?

    @Option(help: "The window each value is taken over, a Prometheus duration.")
    var window = "10m"

    @Option(help: "Fewer requests of either version in the window is inconclusive.")
    var minRequests = 200

    @Option(help: "The canary's highest 5xx rate.")
    var maxErrorRate = "1%"

    @Option(help: "The most the canary's 5xx rate may exceed stable's.")
    var maxErrorRateIncrease = "0.5%"

    @Option(help: "Canary / stable average response time.")
    var maxLatencyRatio = 1.25

    @Option(help: "Canary / stable P95 response time.")
    var maxP95Ratio = 1.5

    @Option(help: "Canary / stable memory per pod.")
    var maxMemoryRatio = 1.5

    @Option(help: ArgumentHelp("PromQL for one metric (repeatable).", valueName: "metric=promql"))
    var query: [String] = []

    @Option(help: "Evaluate this many times, --step apart; stop at the first rollback.")
    var watch = 1

    @Option(help: "Time between evaluations with --watch (default: the window).")
    var step: String?

    @Option(help: "A user for Prometheus' Basic auth (the password from $STAMP_PROMETHEUS_PASSWORD).")
    var prometheusUser: String?

    @Option(help: "Each query's time limit.")
    var requestTimeout = "10s"

    @Flag(help: "Print one JSON document (the last evaluation, with every query).")
    var json = false

    func run() throws {
        let setup = try reportingErrors { try prepare() }
        var result: CanaryAnalysis.Result?
        for round in 0..<setup.rounds {
            if round > 0 { Thread.sleep(forTimeInterval: setup.step) }
            let r = CanaryAnalysis.run(
                stable: stable, canary: canary, stablePods: setup.stablePods, canaryPods: setup.canaryPods,
                selection: setup.selection, custom: setup.custom, thresholds: setup.thresholds, fetch: setup.fetch)
            result = r
            if !json { print(table(r, round: round, of: setup.rounds)) }
            if r.verdict == .rollback { break }
        }
        guard let result else { return }
        if json { printOut(JSONValue.encodeString(document(result))) }
        if result.verdict != .promote { throw ExitCode(result.verdict.exitStatus) }
    }

    struct Setup {
        var rounds: Int
        var step: Double
        var stablePods: String
        var canaryPods: String
        var selection: CanaryAnalysis.Selection
        var custom: [CanaryAnalysis.Metric: String]
        var thresholds: CanaryAnalysis.Thresholds
        var fetch: (String) throws -> Double?
    }

    func prepare() throws -> Setup {
        guard prometheus.hasPrefix("http://") || prometheus.hasPrefix("https://") else {
            throw StampError.usage("--prometheus \(prometheus): an http:// or https:// address")
        }
        guard watch >= 1 else { throw StampError.usage("--watch \(watch): 1 or more") }
        if let authority = prometheus.split(separator: "/").dropFirst(2).first, authority.contains("@") {
            throw StampError.usage(
                "--prometheus: no credentials in the URL (they would show in logs); --prometheus-user with "
                    + "$STAMP_PROMETHEUS_PASSWORD, or $STAMP_PROMETHEUS_TOKEN")
        }
        guard stable != canary else { throw StampError.usage("--stable and --canary are both \(stable)") }
        guard window.range(of: #"^([0-9]+(ms|s|m|h|d|w|y))+$"#, options: .regularExpression) != nil else {
            throw StampError.usage("--window \(window): a Prometheus duration like 10m or 1h30m")
        }
        var t = CanaryAnalysis.Thresholds()
        t.minRequests = Double(minRequests)
        t.maxErrorRate = try fraction(maxErrorRate, "--max-error-rate")
        t.maxErrorRateIncrease = try fraction(maxErrorRateIncrease, "--max-error-rate-increase")
        t.maxLatencyRatio = maxLatencyRatio
        t.maxP95Ratio = maxP95Ratio
        t.maxMemoryRatio = maxMemoryRatio
        var custom: [CanaryAnalysis.Metric: String] = [:]
        for q in query {
            guard let eq = q.firstIndex(of: "="), let m = CanaryAnalysis.Metric(rawValue: String(q[..<eq])) else {
                throw StampError.usage(
                    "--query \(q.prefix(40)): METRIC=PROMQL, METRIC one of "
                        + CanaryAnalysis.Metric.allCases.map(\.rawValue).joined(separator: ", "))
            }
            custom[m] = String(q[q.index(after: eq)...])
        }
        let env = ProcessInfo.processInfo.environment
        var headers: [(String, String)] = []
        if let user = prometheusUser {
            guard let password = env["STAMP_PROMETHEUS_PASSWORD"] else {
                throw StampError.usage("--prometheus-user: set the password in $STAMP_PROMETHEUS_PASSWORD")
            }
            headers.append(("Authorization", Credential(username: user, secret: password).basicHeader))
        } else if let token = env["STAMP_PROMETHEUS_TOKEN"], !token.isEmpty {
            headers.append(("Authorization", "Bearer " + token))
        }
        let seconds = max(
            1, (try HealthPlan.duration(requestTimeout, "--request-timeout") ?? 10_000_000_000) / 1_000_000_000)
        let stepSeconds =
            Double(try HealthPlan.duration(step ?? promDurationAsGo(window), "--step") ?? 60_000_000_000) / 1e9
        let base = prometheus.hasSuffix("/") ? String(prometheus.dropLast()) : prometheus
        let sent = headers
        let fetch: (String) throws -> Double? = { promql in
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            let q = promql.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
            let r: HTTPGet.Response
            do { r = try HTTPGet.get(base + "/api/v1/query?query=" + q, headers: sent, seconds: seconds) } catch {
                throw CanaryError(kind: .network, message: "Prometheus at \(prometheus) cannot be reached: \(error)")
            }
            if r.status == 401 || r.status == 403 {
                throw StampError.usage("Prometheus at \(prometheus) refused the credentials (HTTP \(r.status))")
            }
            guard r.status == 200 || r.status == 400 || r.status == 422 else {
                throw CanaryError(kind: .network, message: "Prometheus at \(prometheus) answered HTTP \(r.status)")
            }
            return try CanaryAnalysis.value(ofAnswer: r.body)
        }
        return Setup(
            rounds: watch, step: stepSeconds, stablePods: stablePods ?? "\(CanaryAnalysis.regexQuoted(app))-stable-.*",
            canaryPods: canaryPods ?? "\(CanaryAnalysis.regexQuoted(app))-canary-.*",
            selection: .init(namespace: namespace, app: app.isEmpty ? nil : app, window: window), custom: custom,
            thresholds: t, fetch: fetch)
    }

    /// `1%` or `0.01`.
    func fraction(_ text: String, _ flag: String) throws -> Double {
        let number = text.hasSuffix("%") ? Double(text.dropLast()).map { $0 / 100 } : Double(text)
        guard let number, number >= 0, number <= 1 else {
            throw StampError.usage("\(flag) \(text): a share like 1% or 0.01")
        }
        return number
    }

    /// Prometheus' `d`, `w`, `y` are not Go's; a window written with them steps hourly.
    func promDurationAsGo(_ w: String) -> String {
        w.contains(where: { "dwy".contains($0) }) ? "1h" : w
    }

    func format(_ m: CanaryAnalysis.Metric, _ v: Double?) -> String {
        guard let v else { return "-" }
        switch m {
        case .requests: return String(format: "%.0f", v)
        case .errorRate: return String(format: "%.2f%%", v * 100)
        case .latencyAvg, .latencyP95: return String(format: "%.0f ms", v)
        case .memory: return String(format: "%.0f MiB", v / 1_048_576)
        }
    }

    func table(_ r: CanaryAnalysis.Result, round: Int, of rounds: Int) -> String {
        func pad(_ s: String, _ n: Int) -> String {
            s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count)
        }
        var lines = [
            (rounds > 1 ? "evaluation \(round + 1) of \(rounds): " : "")
                + "\(canary) (canary) against \(stable) (stable), "
                + "last \(window)",
            pad("metric", 19) + pad("stable", 11) + pad("canary", 11) + pad("change", 9) + pad("threshold", 20)
                + "result",
        ]
        for row in r.rows {
            let change =
                row.comparison.map {
                    row.metric == .errorRate ? String(format: "%+.2f%%", $0 * 100) : String(format: "%.2f x", $0)
                }
                ?? "-"
            let result = row.ok.map { $0 ? "ok" : "FAIL" } ?? "missing"
            lines.append(
                pad(row.metric.title, 19) + pad(format(row.metric, row.stable), 11)
                    + pad(format(row.metric, row.canary), 11) + pad(change, 9) + pad(row.threshold, 20) + result)
        }
        lines.append(
            "verdict: \(r.verdict.rawValue)" + (r.reasons.isEmpty ? "" : " (" + r.reasons.joined(separator: "; ") + ")")
        )
        return lines.joined(separator: "\n")
    }

    func document(_ r: CanaryAnalysis.Result) -> JSONValue {
        func num(_ v: Double?) -> JSONValue { v.map { .number(String(format: "%.12g", $0)) } ?? .null }
        return .object([
            ("schemaVersion", JSONValue(Int64(OutputSchema.version))), ("verdict", .string(r.verdict.rawValue)),
            ("stable", .string(stable)), ("canary", .string(canary)), ("window", .string(window)),
            (
                "metrics",
                .array(
                    r.rows.map { row in
                        .object([
                            ("metric", .string(row.metric.rawValue)), ("stable", num(row.stable)),
                            ("canary", num(row.canary)), ("comparison", num(row.comparison)),
                            ("threshold", .string(row.threshold)), ("ok", row.ok.map { .bool($0) } ?? .null),
                        ])
                    })
            ),
            ("reasons", .array(r.reasons.map { .string($0) })),
            (
                "queries",
                .array(
                    r.queries.map {
                        .object([
                            ("metric", .string($0.metric.rawValue)), ("track", .string($0.track)),
                            ("query", .string($0.query)),
                        ])
                    })
            ),
        ])
    }
}
