import Foundation
import Testing
import TestSupport
import Yams

@testable import Canary

/// `stamp canary analyze` against a real Prometheus (Debian's, on 127.0.0.1, a temporary data
/// folder, 1 s scrapes) scraping Fixtures/mesh_exporter.py: Istio-shaped and cAdvisor-shaped
/// series of two versions, one namespace per scenario; and the verdict at each threshold's edge.
@Suite("Canary analyze (Prometheus on 127.0.0.1)")
struct CanaryAnalyzeTests {
    /// Made once under `shared`'s lock and only read after: the unchecked conformance is safe.
    final class Stack: @unchecked Sendable {
        let processes: [Background]
        let url: String
        let authURL: String
        /// A gateway that lets through only `Bearer t0ken-xyz`.
        let bearerURL: String

        init() throws {
            let dir = try tempDir()
            let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures"
            let exporter = try Background(
                ["python3", fixtures + "/mesh_exporter.py", "--port-file", dir + "/exporter.port"],
                log: dir + "/exporter.log")
            var exporterPort = 0
            for _ in 0..<100 where exporterPort == 0 {
                exporterPort = Int((try? String(contentsOfFile: dir + "/exporter.port", encoding: .utf8)) ?? "") ?? 0
                usleep(50_000)
            }
            try #require(exporterPort > 0, "the exporter did not start")
            try """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
            - job_name: mesh
              static_configs:
              - targets: ['127.0.0.1:\(exporterPort)']
            """.write(toFile: dir + "/prometheus.yml", atomically: true, encoding: .utf8)
            // The second one asks for Basic auth (user ci, password s3cret, bcrypt as Prometheus wants).
            let hash = try run([
                "python3", "-W", "ignore", "-c",
                "import crypt; print(crypt.crypt('s3cret', crypt.mksalt(crypt.METHOD_BLOWFISH)))",
            ]).out.trimmingCharacters(in: .whitespacesAndNewlines)
            try "basic_auth_users:\n  ci: '\(hash)'\n".write(
                toFile: dir + "/web.yml", atomically: true, encoding: .utf8)
            var processes = [exporter]
            var urls: [String] = []
            for (name, extra) in [("open", [String]()), ("auth", ["--web.config.file=" + dir + "/web.yml"])] {
                let port = freePort()
                processes.append(
                    try Background(
                        [
                            "prometheus", "--config.file=" + dir + "/prometheus.yml",
                            "--storage.tsdb.path=" + dir + "/data-" + name, "--web.listen-address=127.0.0.1:\(port)",
                        ] + extra, log: dir + "/prometheus-\(name).log"))
                urls.append("http://127.0.0.1:\(port)")
            }
            url = urls[0]
            authURL = urls[1]
            processes.append(
                try Background(
                    [
                        "python3", fixtures + "/weighted_proxy.py", "--stable", url, "--canary", url, "--weight", "0",
                        "--bearer", "t0ken-xyz", "--port-file", dir + "/bearer.port",
                    ],
                    log: dir + "/bearer.log"))
            self.processes = processes
            var bearerPort = 0
            for _ in 0..<100 where bearerPort == 0 {
                bearerPort = Int((try? String(contentsOfFile: dir + "/bearer.port", encoding: .utf8)) ?? "") ?? 0
                usleep(50_000)
            }
            bearerURL = "http://127.0.0.1:\(bearerPort)"
            try waitForHTTP(url + "/-/ready", what: "prometheus (\(dir)/prometheus-open.log)")
            try waitForHTTP(authURL + "/-/ready", what: "prometheus (\(dir)/prometheus-auth.log)")
            // Enough scrapes for a 15 s window on both.
            Thread.sleep(forTimeInterval: 17)
        }

        static let shared = SharedFixture { try Stack() }
        static func get() throws -> Stack { try shared.get() }
    }

    func analyze(_ url: String, _ namespace: String, _ extra: [String] = [], env: [String: String] = [:]) throws -> (
        RunResult, [String: Any]
    ) {
        let r = try stamp(
            [
                "canary", "analyze", "--prometheus", url, "--stable", "v2.0", "--namespace", namespace, "--window",
                "15s", "--min-requests", "50",
            ] + (extra.contains("--canary") ? [] : ["--canary", "v2.1-canary"]) + extra, env: env)
        let j = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8))) as? [String: Any] ?? [:]
        return (r, j)
    }

    func metric(_ j: [String: Any], _ name: String) -> [String: Any] {
        (j["metrics"] as? [[String: Any]] ?? []).first { $0["metric"] as? String == name } ?? [:]
    }

    @Test func aHealthyCanaryIsPromoted() throws {
        let s = try Stack.get()
        let (r, j) = try analyze(s.url, "healthy", ["--json"])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        #expect(j["verdict"] as? String == "promote")
        #expect(try schemaComplaint(r.out, schema: "canary-analyze") == nil)
        // 40 and 20 requests a second over 15 s: 600 and 300, less what the window's first
        // seconds miss (increase() extrapolates only half a scrape past the first sample).
        let requests = metric(j, "requests")
        let stable = requests["stable"] as? Double ?? 0, canary = requests["canary"] as? Double ?? 0
        #expect(stable > 360 && stable < 700, "\(requests)")
        #expect(abs(canary / stable - 0.5) < 0.05, "\(requests)")
        // Memory per pod of the app's containers only (not the pause container, not the pod).
        let memory = metric(j, "memory")
        #expect(memory["stable"] as? Double == 524_288_000 && memory["canary"] as? Double == 545_259_520)
        // The table a person reads.
        let (human, _) = try analyze(s.url, "healthy")
        #expect(human.status == 0)
        #expect(human.out.contains("metric             stable     canary     change   threshold           result"))
        #expect(
            human.out.contains("memory per pod     500 MiB    520 MiB    1.04 x   <= 1.50 x           ok"),
            "\(human.out)")
        #expect(human.out.hasSuffix("verdict: promote\n"))
    }

    /// Issue 26, point 16: Argo's pods are named by their ReplicaSet's hash, so the memory of
    /// each version comes from its pods' version label (kube_pod_labels); and the app's
    /// container only, never averaged with the Istio sidecar beside it.
    @Test func argoPodsAreFoundByTheirVersionAndTheSidecarIsLeftOut() throws {
        let s = try Stack.get()
        let (r, j) = try analyze(s.url, "argo", ["--json", "--mesh", "argo-rollouts"])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        #expect(j["verdict"] as? String == "promote")
        let memory = metric(j, "memory")
        #expect(memory["stable"] as? Double == 524_288_000 && memory["canary"] as? Double == 545_259_520, "\(memory)")
        // Named as Deployments' pods are, Argo's match nothing: inconclusive, never promote.
        let (byName, _) = try analyze(s.url, "argo", ["--json"])
        #expect(byName.status == 3, "\(byName.out)")
    }

    /// Issue 26: in Argo mode the gate outlives the CI job: the AnalysisTemplate the Rollout runs
    /// in the background has analyze's queries and thresholds. Each of its queries, with the
    /// arguments Argo fills in, is sent to the real Prometheus and judged by its conditions as
    /// Argo judges them (success, else failure, else inconclusive).
    @Test func argosBackgroundAnalysisJudgesAsAnalyzeDoes() throws {
        let s = try Stack.get()
        let dir = try tempDir() + "/deploy"
        let r = try stamp([
            "canary", "render", "--stable", "reg.corp/ai/llm@sha256:" + String(repeating: "1", count: 64),
            "--stable-version", "v2.0", "--canary", "reg.corp/ai/llm@sha256:" + String(repeating: "2", count: 64),
            "--canary-version", "v2.1-canary", "--host", "ai.corp.local", "--mesh", "argo-rollouts", "--gateway",
            "istio-system/public", "--canary-storage", "fresh", "--probe", "http", "--prometheus", s.url,
            "--output", dir,
        ])
        try #require(r.status == 0, "\(r.err)")
        let template = try #require(
            try Yams.compose(yaml: try String(contentsOfFile: dir + "/analysistemplate.yaml", encoding: .utf8)))
        let rollout = try #require(
            try Yams.compose(yaml: try String(contentsOfFile: dir + "/rollout.yaml", encoding: .utf8)))
        #expect(
            rollout["spec"]?["strategy"]?["canary"]?["analysis"]?["templates"]?[0]?["templateName"]?.string
                == template["metadata"]?["name"]?.string)
        func outcome(_ namespace: String) throws -> [String: String] {
            var out: [String: String] = [:]
            for m in template["spec"]?["metrics"]?.sequence ?? [] {
                let p = m["provider"]?["prometheus"]
                #expect(p?["address"]?.string == s.url)
                let query = (p?["query"]?.string ?? "")
                    .replacingOccurrences(of: "{{args.stable-version}}", with: "v2.0")
                    .replacingOccurrences(of: "{{args.canary-version}}", with: "v2.1-canary")
                    .replacingOccurrences(of: "{{args.namespace}}", with: namespace)
                #expect(!query.contains("{{"), "\(query)")
                let q = query.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                let answer = try run(["curl", "-fsS", s.url + "/api/v1/query?query=" + q])
                let value = try CanaryAnalysis.value(ofAnswer: Array(answer.out.utf8))
                func holds(_ condition: String?) -> Bool? {
                    guard let condition else { return nil }
                    if condition == "false" { return false }
                    let parts = condition.split(separator: " ")
                    guard parts.count == 3, let limit = Double(parts[2]), let value else { return nil }
                    return parts[1] == "<=" ? value <= limit : value >= limit
                }
                let name = m["name"]?.string ?? ""
                if holds(m["successCondition"]?.string) == true {
                    out[name] = "success"
                } else if let f = m["failureCondition"]?.string {
                    out[name] = holds(f) == true ? "failure" : "inconclusive"
                } else {
                    out[name] = value == nil ? "error" : "failure"
                }
            }
            return out
        }
        let healthy = try outcome("argo")
        #expect(healthy.count == 6 && healthy.values.allSatisfy { $0 == "success" }, "\(healthy)")
        let errors = try outcome("errors")
        #expect(errors["error-rate"] == "failure" && errors["error-rate-increase"] == "failure", "\(errors)")
        let quiet = try outcome("quiet")
        #expect(quiet["requests"] == "inconclusive", "\(quiet)")
    }

    @Test(arguments: [
        ("errors", "error_rate", "5xx rate"), ("slow", "latency_p95", "P95 response time"),
        ("memory", "memory", "memory per pod"),
    ])
    func aWorseCanaryIsRolledBack(_ namespace: String, _ failing: String, _ words: String) throws {
        let s = try Stack.get()
        let (r, j) = try analyze(s.url, namespace, ["--json"])
        #expect(r.status == 1, "\(r.out)\(r.err)")
        #expect(j["verdict"] as? String == "rollback")
        let failed = (j["metrics"] as? [[String: Any]] ?? []).filter { $0["ok"] as? Bool == false }.compactMap {
            $0["metric"] as? String
        }
        #expect(failed == [failing], "\(r.out)")
        #expect((j["reasons"] as? [String])?.first?.contains(words) == true)
    }

    @Test func tooLittleTrafficOrNoPrometheusIsInconclusive() throws {
        let s = try Stack.get()
        let (quiet, j) = try analyze(s.url, "quiet", ["--json"])
        #expect(quiet.status == 3)
        #expect((j["reasons"] as? [String])?.first?.contains("too little traffic") == true, "\(quiet.out)")
        let (missing, m) = try analyze(s.url, "nowhere", ["--json"])
        #expect(missing.status == 3)
        #expect((m["reasons"] as? [String])?.contains { $0.contains("no series for stable and canary") } == true)
        let (down, d) = try analyze("http://127.0.0.1:\(freePort())", "healthy", ["--json"])
        #expect(down.status == 3)
        #expect((d["reasons"] as? [String])?.first?.contains("cannot be reached") == true, "\(down.out)")
    }

    /// A version with quotes and a backslash is found, so the query carried it escaped.
    @Test func labelValuesAreEscaped() throws {
        let s = try Stack.get()
        let version = #"v2.1 "rc" \ x"#
        let (r, j) = try analyze(s.url, "quoted", ["--canary", version, "--json"])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        let queries = (j["queries"] as? [[String: Any]] ?? []).compactMap { $0["query"] as? String }
        #expect(queries.contains { $0.contains(#"destination_version="v2.1 \"rc\" \\ x""#) })
    }

    @Test func aQueryOfYourOwnAndWatch() throws {
        let s = try Stack.get()
        let errorRate =
            #"error_rate=sum(rate(istio_requests_total{destination_workload_namespace=$namespace,destination_version=$version,response_code="503"}[$window])) / sum(rate(istio_requests_total{destination_workload_namespace=$namespace,destination_version=$version}[$window]))"#
        let (r, j) = try analyze(s.url, "errors", ["--query", errorRate, "--json"])
        #expect(r.status == 1 && metric(j, "error_rate")["ok"] as? Bool == false, "\(r.out)")
        // Twice a second apart when healthy; the first rollback stops a watch.
        let (healthy, _) = try analyze(s.url, "healthy", ["--watch", "2", "--step", "1s"])
        #expect(healthy.status == 0 && healthy.out.contains("evaluation 2 of 2"))
        let (bad, _) = try analyze(s.url, "errors", ["--watch", "3", "--step", "1s"])
        #expect(bad.status == 1 && bad.out.contains("evaluation 1 of 3") && !bad.out.contains("evaluation 2"))
    }

    @Test func basicAuthBearerTokenAndTheSecretNeverPrinted() throws {
        let s = try Stack.get()
        let (ok, _) = try analyze(
            s.authURL, "healthy", ["--prometheus-user", "ci"], env: ["STAMP_PROMETHEUS_PASSWORD": "s3cret"])
        #expect(ok.status == 0, "\(ok.out)\(ok.err)")
        let (refused, _) = try analyze(
            s.authURL, "healthy", ["--prometheus-user", "ci"], env: ["STAMP_PROMETHEUS_PASSWORD": "wrong-pw-123"])
        #expect(refused.status == 3 && refused.out.contains("refused the credentials"), "\(refused.out)")
        #expect(!(refused.out + refused.err).contains("wrong-pw-123"))
        let (none, _) = try analyze(s.authURL, "healthy")
        #expect(none.status == 3)
        // A bearer token, from the environment, through a gateway that checks it.
        let (bearer, _) = try analyze(s.bearerURL, "healthy", env: ["STAMP_PROMETHEUS_TOKEN": "t0ken-xyz"])
        #expect(bearer.status == 0, "\(bearer.out)\(bearer.err)")
        let (wrong, _) = try analyze(s.bearerURL, "healthy", env: ["STAMP_PROMETHEUS_TOKEN": "not-it-456"])
        #expect(wrong.status == 3 && !(wrong.out + wrong.err).contains("not-it-456"), "\(wrong.out)")
    }

    /// Issue 27, point 5: data that cannot be (a negative time or size, NaN) is never promoted
    /// on: inconclusive (exit 3); a threshold that is no ratio is refused.
    @Test func impossibleDataIsInconclusiveAndThresholdsAreChecked() throws {
        let s = try Stack.get()
        for q in ["latency_avg=vector(-3)", "memory=-1 * vector(5)", "latency_p95=vector(0) / 0"] {
            let (r, j) = try analyze(s.url, "healthy", ["--json", "--query", q])
            #expect(r.status == 3, "\(q): \(r.out)")
            #expect(j["verdict"] as? String == "inconclusive", "\(q)")
        }
        let (neg, _) = try analyze(s.url, "healthy", ["--query", "latency_avg=vector(-3)"])
        #expect(neg.out.contains("cannot be"), "\(neg.out)")
        for bad in ["--max-latency-ratio=nan", "--max-memory-ratio=-1", "--max-p95-ratio=inf"] {
            let (r, _) = try analyze(s.url, "healthy", [bad])
            let flag = String(bad.prefix { $0 != "=" })
            #expect(r.status == 2 && r.err.contains(flag + " "), "\(bad): \(r.err)")
        }
    }

    /// Issue 27, points 6 and 8: a token read from a file (its line break kept) works and is
    /// never printed; credentials in a URL are refused and not echoed.
    @Test func secretsAreNeverPrinted() throws {
        let s = try Stack.get()
        let (bearer, _) = try analyze(s.bearerURL, "healthy", env: ["STAMP_PROMETHEUS_TOKEN": "t0ken-xyz\n"])
        #expect(bearer.status == 0, "\(bearer.out)\(bearer.err)")
        let closed = "http://127.0.0.1:\(freePort())"
        let (down, _) = try analyze(closed, "healthy", ["--json"], env: ["STAMP_PROMETHEUS_TOKEN": "abc-secret-123\n"])
        #expect(down.status == 3, "\(down.out)\(down.err)")
        #expect(!(down.out + down.err).contains("abc-secret-123"), "\(down.out)\(down.err)")
        let (inURL, _) = try analyze("http://ci:pa55word-9@127.0.0.1:9", "healthy")
        #expect(inURL.status == 2 && !(inURL.out + inURL.err).contains("pa55word-9"), "\(inURL.err)")
        let status = try stamp([
            "canary", "status", "--url", "http://ci:pa55word-9@127.0.0.1:9", "--canary-version", "v2",
        ])
        #expect(status.status == 2 && !(status.out + status.err).contains("pa55word-9"), "\(status.err)")
    }
}
