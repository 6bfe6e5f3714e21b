import Foundation
import Templates

/// `stamp canary analyze`: the canary against stable from Prometheus, and a verdict a pipeline
/// acts on. Never promotes on missing data.
public enum CanaryAnalysis {
    public enum Verdict: String, Sendable {
        case promote, rollback, inconclusive
        /// 0 promote, 1 rollback, 3 inconclusive (2 stays a usage error).
        public var exitStatus: Int32 {
            switch self {
            case .promote: return 0
            case .rollback: return 1
            case .inconclusive: return 3
            }
        }
    }

    public struct Thresholds: Sendable {
        public var minRequests = 200.0
        public var maxErrorRate = 0.01
        public var maxErrorRateIncrease = 0.005
        public var maxLatencyRatio = 1.25
        public var maxP95Ratio = 1.5
        public var maxMemoryRatio = 1.5
        public init() {}
    }

    /// The metrics, in table order: requests, 5xx rate, average and P95 response time, memory.
    public enum Metric: String, CaseIterable, Sendable {
        case requests
        case errorRate = "error_rate"
        case latencyAvg = "latency_avg"
        case latencyP95 = "latency_p95"
        case memory

        public var title: String {
            switch self {
            case .requests: return "requests"
            case .errorRate: return "5xx rate"
            case .latencyAvg: return "avg response time"
            case .latencyP95: return "P95 response time"
            case .memory: return "memory per pod"
            }
        }
    }

    public struct Row: Sendable {
        public var metric: Metric
        public var stable: Double?
        public var canary: Double?
        /// canary / stable (requests: none; 5xx: canary − stable).
        public var comparison: Double?
        public var threshold: String
        /// nil: not judged (a value is missing).
        public var ok: Bool?
        public var reason: String?
    }

    public struct Result: Sendable {
        public var rows: [Row]
        public var verdict: Verdict
        public var reasons: [String]
        /// Every query sent: metric, track, PromQL.
        public var queries: [(metric: Metric, track: String, query: String)]
    }

    // MARK: - PromQL

    /// A PromQL string literal that is exactly `s`. PromQL reads Go's escapes, of which JSON's
    /// are a subset: `\\`, `"` and control characters escaped, so nothing from a flag is read
    /// as query syntax.
    public static func literal(_ s: String) -> String { Quote.json(s) }

    /// A regular expression (RE2) that matches `s` literally.
    public static func regexQuoted(_ s: String) -> String {
        var out = ""
        for c in s {
            if "\\.+*?()|[]{}^$".contains(c) { out.append("\\") }
            out.append(c)
        }
        return out
    }

    /// Where the series of one version are: the Istio labels, and the pods for cAdvisor.
    public struct Selection: Sendable {
        public var namespace: String?
        public var app: String?
        public var window: String
        /// The app's container (stamp renders it as `app`): not the sidecar, the pause
        /// container or the pod's own cgroup.
        public var container = "app"
        /// Argo Rollouts' pods are named by their ReplicaSet's hash, not by track: the version
        /// comes from kube-state-metrics' `kube_pod_labels` (the pods' `version` label).
        public var byPodLabels = false
        public init(namespace: String?, app: String?, window: String) {
            self.namespace = namespace
            self.app = app
            self.window = window
        }
    }

    /// The query of `metric` for `version`; `pods` is the regular expression of its pods'
    /// names (cAdvisor has no version label). A custom query's `$version`, `$namespace`,
    /// `$window` and `$pods` are replaced by quoted literals (the window as written).
    public static func query(
        _ metric: Metric, version: String, pods: String, selection s: Selection, custom: String? = nil
    ) -> String {
        if let custom {
            return
                custom
                .replacingOccurrences(of: "$version", with: literal(version))
                .replacingOccurrences(of: "$namespace", with: literal(s.namespace ?? ""))
                .replacingOccurrences(of: "$pods", with: literal(pods))
                .replacingOccurrences(of: "$window", with: s.window)
        }
        var labels = ["reporter=\"destination\"", "destination_version=\(literal(version))"]
        if let ns = s.namespace { labels.append("destination_workload_namespace=\(literal(ns))") }
        if let app = s.app { labels.append("destination_app=\(literal(app))") }
        let l = labels.joined(separator: ",")
        let w = s.window
        switch metric {
        case .requests:
            return "sum(increase(istio_requests_total{\(l)}[\(w)]))"
        case .errorRate:
            return "sum(increase(istio_requests_total{\(l),response_code=~\"5..\"}[\(w)])) "
                + "/ sum(increase(istio_requests_total{\(l)}[\(w)]))"
        case .latencyAvg:
            return "sum(increase(istio_request_duration_milliseconds_sum{\(l)}[\(w)])) "
                + "/ sum(increase(istio_request_duration_milliseconds_count{\(l)}[\(w)]))"
        case .latencyP95:
            return
                "histogram_quantile(0.95, sum by (le) (increase(istio_request_duration_milliseconds_bucket{\(l)}[\(w)])))"
        case .memory:
            var m = ["container=\(literal(s.container))"]
            if let ns = s.namespace { m.insert("namespace=\(literal(ns))", at: 0) }
            if s.byPodLabels {
                var k = ["label_version=\(literal(version))"]
                if let ns = s.namespace { k.insert("namespace=\(literal(ns))", at: 0) }
                return "avg(avg_over_time(container_memory_working_set_bytes{\(m.joined(separator: ","))}[\(w)]) "
                    + "* on(namespace, pod) group_left() max by (namespace, pod) "
                    + "(kube_pod_labels{\(k.joined(separator: ","))}))"
            }
            m.append("pod=~\(literal(pods))")
            return "avg(avg_over_time(container_memory_working_set_bytes{\(m.joined(separator: ","))}[\(w)]))"
        }
    }

    // MARK: - Verdict

    /// Judges the two versions' values. Fewer requests than the minimum is inconclusive whatever
    /// else (a rate of a handful of requests says nothing); then a failing metric is rollback;
    /// then a missing value is inconclusive.
    public static func judge(
        stable: [Metric: Double], canary: [Metric: Double], thresholds t: Thresholds
    ) -> (rows: [Row], verdict: Verdict, reasons: [String]) {
        var rows: [Row] = []
        var failed: [String] = []
        var missing: [String] = []
        func pct(_ x: Double) -> String { String(format: "%.2f%%", x * 100) }
        for m in Metric.allCases {
            let s = stable[m], c = canary[m]
            var row = Row(metric: m, stable: s, canary: c, comparison: nil, threshold: "", ok: nil, reason: nil)
            switch m {
            case .requests:
                row.threshold = String(format: ">= %.0f each", t.minRequests)
                if let s, let c {
                    row.ok = s >= t.minRequests && c >= t.minRequests
                    if row.ok == false {
                        missing.append(
                            String(
                                format: "too little traffic: %.0f stable and %.0f canary requests in the window, ", s, c
                            )
                                + String(format: "%.0f each needed", t.minRequests))
                    }
                }
            case .errorRate:
                row.threshold = "<= \(pct(t.maxErrorRate)), +\(pct(t.maxErrorRateIncrease))"
                if let s, let c {
                    row.comparison = c - s
                    var why: [String] = []
                    if c > t.maxErrorRate { why.append("canary 5xx rate \(pct(c)) over \(pct(t.maxErrorRate))") }
                    if c - s > t.maxErrorRateIncrease {
                        why.append("5xx rate up \(pct(c - s)) on stable's, over \(pct(t.maxErrorRateIncrease))")
                    }
                    row.ok = why.isEmpty
                    if !why.isEmpty { row.reason = why.joined(separator: "; ") }
                }
            case .latencyAvg, .latencyP95, .memory:
                let limit = m == .latencyAvg ? t.maxLatencyRatio : m == .latencyP95 ? t.maxP95Ratio : t.maxMemoryRatio
                row.threshold = String(format: "<= %.2f x", limit)
                if let s, let c, s > 0 {
                    let ratio = c / s
                    row.comparison = ratio
                    row.ok = ratio <= limit
                    if ratio > limit {
                        row.reason = String(format: "\(m.title) %.2f x stable's, over %.2f", ratio, limit)
                    }
                }
            }
            if row.ok == nil {
                let which = [s == nil ? "stable" : nil, c == nil ? "canary" : nil].compactMap { $0 }
                missing.append(
                    which.isEmpty
                        ? "\(m.title): stable's is 0, no ratio"
                        : "\(m.title): no series for \(which.joined(separator: " and "))")
            }
            if row.ok == false, let r = row.reason { failed.append(r) }
            rows.append(row)
        }
        if rows[0].ok == false { return (rows, .inconclusive, missing) }
        if !failed.isEmpty { return (rows, .rollback, failed) }
        if !missing.isEmpty { return (rows, .inconclusive, missing) }
        return (rows, .promote, [])
    }

    /// Queries every metric of both versions through `fetch` (nil: an empty result or NaN) and
    /// judges them. A failure of `fetch` (Prometheus down, a query refused) is inconclusive.
    public static func run(
        stable: String, canary: String, stablePods: String, canaryPods: String, selection: Selection,
        custom: [Metric: String], thresholds: Thresholds, fetch: (String) throws -> Double?
    ) -> Result {
        var queries: [(Metric, String, String)] = []
        var values: [String: [Metric: Double]] = ["stable": [:], "canary": [:]]
        var impossible: [String] = []
        for m in Metric.allCases {
            for (track, version, pods) in [("stable", stable, stablePods), ("canary", canary, canaryPods)] {
                let q = query(m, version: version, pods: pods, selection: selection, custom: custom[m])
                queries.append((m, track, q))
                do {
                    if let v = try fetch(q) {
                        // A count, a rate, a time or a size below zero, or not a number: the
                        // data cannot be, and nothing is promoted on it.
                        guard v.isFinite, v >= 0 else {
                            impossible.append(
                                "\(m.title) of \(track): Prometheus answered \(v), which cannot be; not judged")
                            continue
                        }
                        values[track]![m] = v
                    }
                } catch {
                    let rows = Metric.allCases.map {
                        Row(metric: $0, stable: nil, canary: nil, comparison: nil, threshold: "", ok: nil, reason: nil)
                    }
                    return Result(rows: rows, verdict: .inconclusive, reasons: ["\(error)"], queries: queries)
                }
            }
        }
        let (rows, verdict, reasons) = judge(
            stable: values["stable"]!, canary: values["canary"]!, thresholds: thresholds)
        if !impossible.isEmpty {
            return Result(rows: rows, verdict: .inconclusive, reasons: impossible, queries: queries)
        }
        return Result(rows: rows, verdict: verdict, reasons: reasons, queries: queries)
    }

    /// The value of an instant query's answer (`/api/v1/query`): the one sample of a vector or
    /// a scalar; nil when the vector is empty or the value NaN.
    public static func value(ofAnswer body: [UInt8]) throws -> Double? {
        guard let j = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw CanaryError.badInput("Prometheus answered something that is not its API's JSON")
        }
        guard j["status"] as? String == "success", let data = j["data"] as? [String: Any] else {
            throw CanaryError(kind: .refused, message: "Prometheus refused the query: \(j["error"] as? String ?? "?")")
        }
        var sample: [Any]?
        if data["resultType"] as? String == "scalar" {
            sample = data["result"] as? [Any]
        } else if let r = data["result"] as? [[String: Any]] {
            guard r.count <= 1 else {
                throw CanaryError.badInput(
                    "the query returned \(r.count) series, not one (aggregate it with sum or avg)")
            }
            sample = r.first?["value"] as? [Any]
        }
        guard let text = sample?.last as? String else { return nil }
        guard let v = Double(text), v.isFinite else { return nil }
        return v
    }
}
