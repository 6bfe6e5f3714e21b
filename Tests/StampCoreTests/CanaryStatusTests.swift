import Foundation
import Testing
import TestSupport
import Yams

@testable import Canary

/// `stamp canary status` against two real HTTP servers on 127.0.0.1 serving the
/// `/version.json` of two stamped sample images (unpacked by umoci), behind a small weighted
/// gateway (Fixtures/weighted_proxy.py); and the statistics at their edges.
@Suite("Canary status")
struct CanaryStatusTests {
    /// The two images' published folders, served; kept for the whole suite.
    final class Servers: @unchecked Sendable {
        // Made once under `shared`'s lock and only read after: the unchecked conformance is safe.
        let processes: [Background]
        let stable: String
        let canary: String
        let old: String
        let hang: Int

        init() throws {
            let dir = try tempDir()
            let base = try sampleBase(dir)
            var urls: [String] = []
            var processes: [Background] = []
            for version in ["v2.0", "v2.1-canary", "v1.9"] {
                let layout = "\(dir)/layout"
                let r = try stamp(
                    [
                        "build", "--base", base, "--version", version, "--platform", "linux/amd64", "--output",
                        "oci:\(layout):\(version)",
                    ],
                    env: ["SOURCE_DATE_EPOCH": "1743811200"])
                #expect(r.status == 0, "\(r.err)")
                let bundle = "\(dir)/bundle-\(version)"
                let u = try run(["umoci", "unpack", "--image", "\(layout):\(version)", bundle])
                #expect(u.status == 0, "\(u.err)")
                let port = freePort()
                let served = bundle + "/rootfs/app/server/public"
                processes.append(
                    try Background(
                        ["python3", "-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", served],
                        log: "\(dir)/http-\(version).log"))
                urls.append("http://127.0.0.1:\(port)")
                try waitForHTTP(urls.last! + "/version.json", what: "http.server for \(version)")
            }
            // A server that takes connections and never answers.
            hang = freePort()
            processes.append(
                try Background(
                    [
                        "python3", "-c",
                        "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                            + "s.bind(('127.0.0.1',\(hang)))\ns.listen(64)\nc=[]\nwhile True:\n  c.append(s.accept())\n",
                    ], log: dir + "/hang.log"))
            usleep(300_000)
            (stable, canary, old) = (urls[0], urls[1], urls[2])
            self.processes = processes
        }

        static let shared = SharedFixture { try Servers() }
        static func get() throws -> Servers { try shared.get() }
    }

    /// A weighted gateway in front of `stable` and `canary`.
    func gateway(_ stable: String, _ canary: String, weight: Int, _ flags: [String] = []) throws -> (Background, String)
    {
        let dir = try tempDir()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/weighted_proxy.py"
        let p = try Background(
            [
                "python3", script, "--stable", stable, "--canary", canary, "--weight", String(weight), "--port-file",
                dir + "/port",
            ] + flags, log: dir + "/proxy.log")
        for _ in 0..<100 {
            if let s = try? String(contentsOfFile: dir + "/port", encoding: .utf8), let port = Int(s) {
                return (p, "http://127.0.0.1:\(port)")
            }
            usleep(50_000)
        }
        throw CanaryError.badInput("the weighted gateway did not start: \(dir)/proxy.log")
    }

    let expect = ["--stable-version", "v2.0", "--canary-version", "v2.1-canary"]

    func status(_ url: String, _ args: [String]) throws -> (RunResult, [String: Any]) {
        let r = try stamp(["canary", "status", "--url", url, "--json"] + args)
        let j = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8))) as? [String: Any] ?? [:]
        #expect(try schemaComplaint(r.out, schema: "canary-status") == nil, "\(r.out)")
        return (r, j)
    }

    @Test func aRightSplitAndHeaderRoutePass() throws {
        let s = try Servers.get()
        let (proxy, url) = try gateway(s.stable, s.canary, weight: 25)
        defer { _ = proxy }
        let (r, j) = try status(url, expect + ["--weight", "25", "--requests", "200"])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        #expect((j["withHeader"] as? [String: Int]) == ["v2.1-canary": 20])
        #expect((j["withoutHeader"] as? [String: Int]) == ["v2.0": 150, "v2.1-canary": 50])
        let share = j["canaryShare"] as? [String: Double]
        #expect(share?["observed"] == 0.25 && (share?["low"] ?? 1) < 0.25 && (share?["high"] ?? 0) > 0.25)
        // The same expectations read from a rendered folder.
        let folder = try tempDir() + "/deploy"
        let rendered = try stamp([
            "canary", "render", "--stable", "reg.corp/ai/llm@sha256:" + String(repeating: "1", count: 64),
            "--stable-version", "v2.0", "--canary", "reg.corp/ai/llm@sha256:" + String(repeating: "2", count: 64),
            "--canary-version", "v2.1-canary", "--host", "ai.corp.local", "--weight", "25", "--canary-storage",
            "fresh", "--gateway", "istio-system/public", "--no-sticky", "--output", folder,
        ])
        #expect(rendered.status == 0, "\(rendered.err)")
        let human = try stamp(["canary", "status", "--url", url, "--folder", folder, "--requests", "100"])
        #expect(human.status == 0, "\(human.out)")
        #expect(human.out.contains("with the header:    v2.1-canary 20") && human.out.hasSuffix("ok\n"))
    }

    /// Issue 26, acceptance (d): HAProxy (Debian's) on 127.0.0.1, configured from the rendered
    /// VirtualService as Istio applies it (rules in order, the first match wins; each rule's
    /// weighted destinations; the Set-Cookie each destination adds to its answers): every client
    /// that keeps the cookie meets one version over 200 requests. The same proxy without the
    /// cookie rules mixes versions, and status says so.
    @Test(arguments: [true, false])
    func aStickySplitKeepsEachClientOnItsVersion(_ sticky: Bool) throws {
        let s = try Servers.get()
        let folder = try tempDir() + "/deploy"
        let rendered = try stamp([
            "canary", "render", "--stable", "reg.corp/ai/llm@sha256:" + String(repeating: "1", count: 64),
            "--stable-version", "v2.0", "--canary", "reg.corp/ai/llm@sha256:" + String(repeating: "2", count: 64),
            "--canary-version", "v2.1-canary", "--host", "ai.corp.local", "--weight", "50", "--canary-storage",
            "fresh", "--gateway", "istio-system/public", "--output", folder,
        ])
        try #require(rendered.status == 0, "\(rendered.err)")
        let vs = try #require(
            try Yams.compose(yaml: try String(contentsOfFile: folder + "/virtualservice.yaml", encoding: .utf8)))
        let servers = ["stable": s.stable, "canary": s.canary].mapValues {
            $0.replacingOccurrences(of: "http://", with: "")
        }
        let port = freePort()
        var frontend = ["frontend gateway", "  bind 127.0.0.1:\(port)"]
        var backends: [String] = []
        for (i, rule) in (vs["spec"]?["http"]?.sequence ?? []).enumerated() {
            let isCookie = rule["match"]?[0]?["headers"]?["cookie"] != nil
            if !sticky && isCookie { continue }
            var conditions: [String] = []
            for (name, m) in rule["match"]?[0]?["headers"]?.mapping ?? [:] {
                if let exact = m["exact"]?.string {
                    conditions.append("{ req.hdr(\(name.string!)) -m str '\(exact)' }")
                } else if let regex = m["regex"]?.string {
                    conditions.append("{ req.hdr(\(name.string!)) -m reg '\(regex)' }")
                }
            }
            let backend = "rule\(i)"
            frontend.append(
                conditions.isEmpty ? "  default_backend \(backend)" : "  use_backend \(backend) if \(conditions[0])")
            backends += ["backend \(backend)", "  balance random"]
            for d in rule["route"]?.sequence ?? [] {
                let subset = d["destination"]?["subset"]?.string ?? ""
                let weight = d["weight"]?.int ?? 100
                backends.append("  server \(subset) \(servers[subset]!) weight \(weight)")
                if sticky, let cookie = d["headers"]?["response"]?["add"]?["set-cookie"]?.string {
                    backends.append("  http-response add-header Set-Cookie '\(cookie)' if { srv_name \(subset) }")
                }
            }
        }
        let config = try tempDir() + "/haproxy.cfg"
        try
            ([
                "global", "  maxconn 512", "defaults", "  mode http", "  timeout connect 2s", "  timeout client 10s",
                "  timeout server 10s",
            ] + frontend + backends).joined(separator: "\n").appending("\n").write(
                toFile: config, atomically: true, encoding: .utf8)
        let proxy = try Background(["haproxy", "-db", "-f", config], log: config + ".log")
        defer { _ = proxy }
        try waitForHTTP("http://127.0.0.1:\(port)/version.json", what: "haproxy (\(config).log)")
        let (r, j) = try status(
            "http://127.0.0.1:\(port)",
            ["--folder", folder, "--requests", "100", "--sticky-clients", "4", "--sticky-requests", "200"])
        let clients = (j["sticky"] as? [String: Any])?["clients"] as? [[String: Any]] ?? []
        #expect(clients.count == 4)
        let versionsSeen = clients.map { ($0["versions"] as? [String: Int]) ?? [:] }
        if sticky {
            #expect(r.status == 0, "\(r.out)")
            #expect(versionsSeen.allSatisfy { $0.count == 1 && $0.values.first == 200 }, "\(versionsSeen)")
        } else {
            #expect(r.status == 1)
            #expect(versionsSeen.contains { $0.count == 2 }, "\(versionsSeen)")
            #expect((j["problems"] as? [String])?.contains { $0.contains("the split is not sticky") } == true)
        }
    }

    @Test func aSplitOffTheWeightFails() throws {
        let s = try Servers.get()
        let (proxy, url) = try gateway(s.stable, s.canary, weight: 50)
        defer { _ = proxy }
        let (r, j) = try status(url, expect + ["--weight", "5", "--requests", "100", "--header-requests", "5"])
        #expect(r.status == 1)
        #expect((j["problems"] as? [String])?.contains { $0.contains("off beyond chance") } == true, "\(r.out)")
    }

    @Test func aHeaderThatDoesNotReachTheCanaryFails() throws {
        let s = try Servers.get()
        let (proxy, url) = try gateway(s.stable, s.canary, weight: 10, ["--ignore-header"])
        defer { _ = proxy }
        let (r, j) = try status(url, expect + ["--weight", "10", "--requests", "50"])
        #expect(r.status == 1)
        #expect((j["problems"] as? [String])?.contains { $0.contains("header does not reach the canary") } == true)
    }

    @Test func anUnknownVersionFails() throws {
        let s = try Servers.get()
        let (proxy, url) = try gateway(s.old, s.canary, weight: 10)
        defer { _ = proxy }
        let (r, j) = try status(url, expect + ["--weight", "10", "--requests", "50"])
        #expect(r.status == 1)
        #expect(
            (j["problems"] as? [String])?.contains { $0.contains("version v1.9 answered 45 times") } == true, "\(r.out)"
        )
    }

    @Test func anHTMLAnswerFails() throws {
        let s = try Servers.get()
        let (proxy, url) = try gateway(s.stable, s.canary, weight: 10, ["--html"])
        defer { _ = proxy }
        let (r, j) = try status(url, expect + ["--requests", "10", "--header-requests", "2"])
        #expect(r.status == 1)
        #expect((j["problems"] as? [String])?.contains { $0.contains("an HTML page, not version.json") } == true)
    }

    @Test func aServerThatHangsIsBoundedInTime() throws {
        let s = try Servers.get()
        let start = Date()
        let (r, j) = try status(
            "http://127.0.0.1:\(s.hang)", expect + ["--timeout", "2s", "--request-timeout", "1s", "--requests", "500"])
        let took = Date().timeIntervalSince(start)
        #expect(r.status == 1)
        #expect(took < 8, "took \(took) s")
        #expect((j["sent"] as? Int ?? 500) < 500)
        #expect((j["problems"] as? [String])?.contains { $0.contains("no answer within") } == true, "\(r.out)")
    }

}
