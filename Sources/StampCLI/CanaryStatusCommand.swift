import ArgumentParser
import Canary
import Foundation
import OCI
import Registry
import StampCore

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

    @Option(help: "Clients that keep the sticky cookie as a browser does (default 4 when the folder's routes set one).")
    var stickyClients: Int?

    @Option(help: "Requests each sticky client sends, one after another.")
    var stickyRequests = 50

    @Option(help: "The sticky cookie's name (default: the folder's, APP-version).")
    var cookie: String?

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
        var sessions: [CanaryStatus.Session] = []
        var cookieName: String?
        let report = try reportingErrors(json: json) { () throws -> CanaryStatus.Report in
            var expect = CanaryStatus.Expectation(stable: stableVersion, canary: canaryVersion, weight: weight)
            cookieName = cookie
            if let folder {
                let f = try CanaryFolder(path: folder, lock: .shared)
                let versions = f.versions
                expect.stable = expect.stable ?? versions.stable
                expect.canary = expect.canary ?? versions.canary
                expect.weight = expect.weight ?? f.weight
                cookieName = cookieName ?? f.stickyCookie
            }
            let clients = stickyClients ?? (cookieName == nil ? 0 : 4)
            guard clients >= 0, clients <= 64, stickyRequests >= 1, stickyRequests <= 100_000 else {
                throw StampError.usage("--sticky-clients: 0 to 64; --sticky-requests: 1 to 100000")
            }
            if clients > 0 && cookieName == nil {
                throw StampError.usage("--sticky-clients: name the cookie with --cookie (or give --folder)")
            }
            guard expect.canary != nil else {
                throw StampError.usage("give --folder, or --canary-version (and --stable-version, --weight)")
            }
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw StampError.usage("--url \(Redact.url(url)): an http:// or https:// address")
            }
            guard !Redact.hasCredentials(url) else {
                throw StampError.usage(
                    "--url \(Redact.url(url)): no credentials in the URL (they would show in logs and reports)")
            }
            guard (0...100_000).contains(requests), (0...100_000).contains(headerRequests),
                requests + headerRequests > 0, (1...256).contains(concurrency)
            else {
                throw StampError.usage(
                    "--requests, --header-requests: 0 to 100000, not both 0; --concurrency: 1 to 256")
            }
            let (name, value, _) = try canaryHeader(header)
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
            var report = CanaryStatus.evaluate(
                plain: plain, withHeader: withHeader, expect: expect, planned: requests + headerRequests)
            if clients > 0, let name = cookieName {
                sessions = CanaryStatus.sessions(clients: clients, requests: stickyRequests, deadline: deadline) {
                    held in
                    let left = max(1, Int64((each + 999_999_999) / 1_000_000_000))
                    do {
                        let r = try HTTPGet.get(
                            target, headers: held.map { [("Cookie", "\(name)=\($0)")] } ?? [], seconds: left,
                            tlsVerify: verify)
                        let set = r.setCookies.compactMap { CanaryStatus.cookieValue($0, name: name) }.last
                        return (CanaryStatus.outcome(status: r.status, contentType: r.contentType, body: r.body), set)
                    } catch {
                        return (.failure("\(error)"), nil)
                    }
                }
                report.problems += CanaryStatus.judge(sessions: sessions, cookie: name)
            }
            return report
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
            if let name = cookieName, !sessions.isEmpty {
                j["sticky"] = .object([
                    ("cookie", .string(name)),
                    (
                        "clients",
                        .array(
                            sessions.map { s in
                                let counts = Dictionary(grouping: s.versions, by: { $0 }).mapValues(\.count)
                                return .object([
                                    (
                                        "versions",
                                        .object(
                                            counts.sorted { $0.key < $1.key }.map {
                                                ($0.key, JSONValue(Int64($0.value)))
                                            })
                                    ),
                                    ("failures", JSONValue(Int64(s.failures))),
                                ])
                            })
                    ),
                ])
            }
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
            if let name = cookieName, !sessions.isEmpty {
                let held = sessions.filter { $0.distinct.count == 1 }.count
                printOut(
                    "  sticky (\(name)):    \(held) of \(sessions.count) clients kept one version over "
                        + "\(stickyRequests) requests ("
                        + sessions.map { $0.distinct.sorted().joined(separator: "+") }.joined(separator: ", ") + ")")
            }
            for p in report.problems { printOut("problem: \(p)") }
            if report.ok { printOut("ok") }
        }
        if !report.ok { throw ExitCode(1) }
    }
}
