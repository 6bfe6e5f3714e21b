import Foundation
import Yams

/// Argo Rollouts' background analysis: the same queries and thresholds as `stamp canary
/// analyze`, as an `AnalysisTemplate` (prometheus provider) the Rollout runs from its first
/// step, so the controller aborts a bad canary even when the pipeline that started it is gone.
///
/// Argo's rules for a measurement: `successCondition` true is success; else a
/// `failureCondition` that is true is failure; with both set and neither true the measurement
/// is inconclusive (the rollout pauses), which is how too little traffic is kept from failing
/// or passing a canary, as `analyze` keeps it from promoting.
enum AnalysisTemplates {
    static let args = ["stable-version", "canary-version", "namespace"]

    /// One metric: its name, PromQL (with `{{args.*}}` for what Argo fills in), and conditions.
    struct Check {
        var name: String
        var query: String
        var success: String
        var failure: String?
    }

    static func checks(_ s: CanarySpec, thresholds t: CanaryAnalysis.Thresholds, window: String) -> [Check] {
        var sel = CanaryAnalysis.Selection(namespace: "{{args.namespace}}", app: s.app, window: window)
        sel.byPodLabels = true
        func q(_ m: CanaryAnalysis.Metric, _ track: String) -> String {
            CanaryAnalysis.query(m, version: "{{args.\(track)-version}}", pods: "", selection: sel)
        }
        func ratio(_ m: CanaryAnalysis.Metric) -> String { "(\(q(m, "canary"))) / (\(q(m, "stable")))" }
        func num(_ x: Double) -> String { String(format: "%g", x) }
        return [
            Check(
                name: "requests", query: "(\(q(.requests, "canary"))) or vector(0)",
                success: "result[0] >= \(num(t.minRequests))", failure: "false"),
            Check(
                name: "error-rate", query: q(.errorRate, "canary"), success: "result[0] <= \(num(t.maxErrorRate))",
                failure: nil),
            Check(
                name: "error-rate-increase", query: "(\(q(.errorRate, "canary"))) - (\(q(.errorRate, "stable")))",
                success: "result[0] <= \(num(t.maxErrorRateIncrease))", failure: nil),
            Check(
                name: "latency-ratio", query: ratio(.latencyAvg), success: "result[0] <= \(num(t.maxLatencyRatio))",
                failure: nil),
            Check(
                name: "p95-ratio", query: ratio(.latencyP95), success: "result[0] <= \(num(t.maxP95Ratio))",
                failure: nil),
            Check(
                name: "memory-ratio", query: ratio(.memory), success: "result[0] <= \(num(t.maxMemoryRatio))",
                failure: nil),
        ]
    }

    static func name(_ s: CanarySpec) -> String { "\(s.app)-canary" }

    static func template(_ s: CanarySpec, prometheus: String) -> Node {
        let checks = checks(s, thresholds: .init(), window: "5m")
        let metrics = checks.map { c in
            Y.map([
                ("name", Y.str(c.name)), ("interval", Y.str("5m")),
                // One failed measurement aborts; an inconclusive one pauses for a person.
                ("failureLimit", Y.int(0)), ("inconclusiveLimit", Y.int(1)),
                ("successCondition", Y.str(c.success)), ("failureCondition", c.failure.map(Y.str)),
                (
                    "provider",
                    Y.map([("prometheus", Y.map([("address", Y.str(prometheus)), ("query", Y.str(c.query))]))])
                ),
            ])
        }
        return Y.map([
            ("apiVersion", Y.str("argoproj.io/v1alpha1")), ("kind", Y.str("AnalysisTemplate")),
            ("metadata", Workloads.metadata(name(s), labels: [("app", s.app)])),
            (
                "spec",
                Y.map([
                    ("args", Y.seq(args.map { Y.map([("name", Y.str($0))]) })),
                    ("metrics", Y.seq(metrics)),
                ])
            ),
        ])
    }

    /// The Rollout's `strategy.canary.analysis`: the template, from the first step, with the
    /// versions from the annotations stamp keeps (Argo reads `fieldRef`s of the Rollout).
    static func rolloutAnalysis(_ s: CanarySpec) -> Node {
        func field(_ name: String, _ path: String) -> Node {
            Y.map([("name", Y.str(name)), ("valueFrom", Y.map([("fieldRef", Y.map([("fieldPath", Y.str(path))]))]))])
        }
        return Y.map([
            ("templates", Y.seq([Y.map([("templateName", Y.str(name(s)))])])),
            ("startingStep", Y.int(1)),
            (
                "args",
                Y.seq([
                    field("stable-version", "metadata.annotations['\(RolloutKeys.stableVersion)']"),
                    field("canary-version", "metadata.annotations['\(RolloutKeys.canaryVersion)']"),
                    field("namespace", "metadata.namespace"),
                ])
            ),
        ])
    }
}
