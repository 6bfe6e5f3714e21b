import ArgumentParser
import Canary
import Foundation
import OCI
import Registry
import StampCore

struct CanaryAnalyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Compare canary and stable from Prometheus: promote (exit 0), rollback (1) or inconclusive (3).",
        discussion: """
            Queries /api/v1/query over the window for each version: Istio's istio_requests_total and \
            istio_request_duration_milliseconds (by destination_version), cAdvisor's \
            container_memory_working_set_bytes of the app's container (by pod name; with --mesh \
            argo-rollouts by the pods' version label, from kube-state-metrics). Label values are escaped; --query \
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

    @Option(help: "istio or gateway-api (pods named APP-TRACK-…), argo-rollouts (pods by their version label).")
    var mesh = "istio"

    @Option(help: "The app's container, whose memory counts (not the sidecar's).")
    var container = "app"

    @Option(help: "The stable's pods, a regular expression of names (default the Deployment's: APP-stable-HASH-ID).")
    var stablePods: String?

    @Option(help: "The canary's pods (default APP-canary-HASH-ID).")
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
        let setup = try reportingErrors(json: json) { try prepare() }
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
        guard (1...10_000).contains(watch) else { throw StampError.usage("--watch \(watch): 1 to 10000") }
        guard stable != canary else { throw StampError.usage("--stable and --canary are both \(stable)") }
        guard window.range(of: #"^([0-9]+(ms|s|m|h|d|w|y))+$"#, options: .regularExpression) != nil else {
            throw StampError.usage("--window \(window): a Prometheus duration like 10m or 1h30m")
        }
        var t = CanaryAnalysis.Thresholds()
        t.minRequests = Double(minRequests)
        t.maxErrorRate = try fraction(maxErrorRate, "--max-error-rate")
        t.maxErrorRateIncrease = try fraction(maxErrorRateIncrease, "--max-error-rate-increase")
        for (flag, v) in [
            ("--max-latency-ratio", maxLatencyRatio), ("--max-p95-ratio", maxP95Ratio),
            ("--max-memory-ratio", maxMemoryRatio),
        ] where !(v.isFinite && v > 0 && v <= 1000) {
            throw StampError.usage("\(flag) \(v): a ratio above 0 (1.25 is 25% more than stable's)")
        }
        guard (0...1_000_000_000).contains(minRequests) else {
            throw StampError.usage("--min-requests \(minRequests): 0 or more")
        }
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
        let seconds = max(
            1, (try HealthPlan.duration(requestTimeout, "--request-timeout") ?? 10_000_000_000) / 1_000_000_000)
        let stepSeconds =
            Double(try HealthPlan.duration(step ?? promDurationAsGo(window), "--step") ?? 60_000_000_000) / 1e9
        let client = try PrometheusClient(
            url: prometheus, user: prometheusUser, environment: ProcessInfo.processInfo.environment, seconds: seconds)
        let fetch: (String) throws -> Double? = { try client.value($0) }
        guard let m = Mesh(rawValue: mesh) else {
            throw StampError.usage("--mesh \(mesh): istio, gateway-api or argo-rollouts")
        }
        var selection = CanaryAnalysis.Selection(namespace: namespace, app: app.isEmpty ? nil : app, window: window)
        selection.container = container
        // Argo's pods are APP-HASH-ID whatever their track: memory by the version label instead.
        selection.byPodLabels = m == .argoRollouts && stablePods == nil && canaryPods == nil
        // A Deployment's pods are NAME-HASH-ID: APP-stable-… never matches APP-stable-v2-….
        func pods(_ track: String) -> String { "\(CanaryAnalysis.regexQuoted(app))-\(track)-[a-z0-9]+-[a-z0-9]+" }
        return Setup(
            rounds: watch, step: stepSeconds, stablePods: stablePods ?? pods("stable"),
            canaryPods: canaryPods ?? pods("canary"), selection: selection, custom: custom, thresholds: t,
            fetch: fetch)
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
