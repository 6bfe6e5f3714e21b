import Foundation
import OCI
import Synchronization

/// `stamp canary status`: which versions a live service answers with, with and without the
/// canary header, against what the folder (or the flags) say it should.
public enum CanaryStatus {
    /// One request's outcome: the version `/version.json` named, or why there was none.
    public enum Outcome: Sendable, Equatable {
        case version(String)
        case failure(String)
    }

    public struct Expectation: Sendable {
        public var stable: String?
        public var canary: String?
        /// Percent of requests without the header that should reach the canary.
        public var weight: Int?
        public init(stable: String?, canary: String?, weight: Int?) {
            self.stable = stable
            self.canary = canary
            self.weight = weight
        }
    }

    public struct Report: Sendable {
        public var plain: [String: Int] = [:]
        public var withHeader: [String: Int] = [:]
        public var failures: [String: Int] = [:]
        public var sent = 0
        public var planned = 0
        public var canaryShare: Double?
        /// The 99% Wilson interval of the canary's share of answers without the header.
        public var interval: (low: Double, high: Double)?
        public var expectation: Expectation
        public var problems: [String] = []
        public var ok: Bool { problems.isEmpty }
    }

    /// The canary's share and whether it fits the weight by more than chance (99%: a check run
    /// in every pipeline should not cry wolf once in twenty runs).
    public static let z = 2.5758

    /// Wilson's score interval for `successes` of `trials`.
    public static func wilson(_ successes: Int, _ trials: Int, z: Double = z) -> (low: Double, high: Double) {
        guard trials > 0 else { return (0, 1) }
        let n = Double(trials), p = Double(successes) / n, z2 = z * z
        let center = (p + z2 / (2 * n)) / (1 + z2 / n)
        let half = z * ((p * (1 - p) / n + z2 / (4 * n * n)).squareRoot()) / (1 + z2 / n)
        return (max(0, center - half), min(1, center + half))
    }

    /// Judges the outcomes of requests without the header (`plain`) and with it.
    public static func evaluate(plain: [Outcome], withHeader: [Outcome], expect: Expectation, planned: Int) -> Report {
        var r = Report(expectation: expect)
        r.planned = planned
        r.sent = plain.count + withHeader.count
        for o in plain + withHeader {
            if case .failure(let m) = o { r.failures[m, default: 0] += 1 }
        }
        for case .version(let v) in plain { r.plain[v, default: 0] += 1 }
        for case .version(let v) in withHeader { r.withHeader[v, default: 0] += 1 }
        let known = Set([expect.stable, expect.canary].compactMap { $0 })
        if !known.isEmpty {
            let unknown = Set(r.plain.keys).union(r.withHeader.keys).subtracting(known)
            for v in unknown.sorted() {
                r.problems.append(
                    "version \(v) answered \((r.plain[v] ?? 0) + (r.withHeader[v] ?? 0)) times; only "
                        + known.sorted().joined(separator: " and ") + " should run")
            }
        }
        if let canary = expect.canary {
            let answered = r.withHeader.values.reduce(0, +)
            let others = answered - (r.withHeader[canary] ?? 0)
            if answered == 0 && !withHeader.isEmpty {
                r.problems.append("no request with the header was answered")
            } else if others > 0 {
                r.problems.append(
                    "the header does not reach the canary: \(others) of \(answered) requests with it answered "
                        + r.withHeader.filter { $0.key != canary }.keys.sorted().joined(separator: ", "))
            }
        }
        let answered = r.plain.values.reduce(0, +)
        if let canary = expect.canary, answered > 0 {
            let hits = r.plain[canary] ?? 0
            r.canaryShare = Double(hits) / Double(answered)
            let ci = wilson(hits, answered)
            r.interval = ci
            if let w = expect.weight {
                let target = Double(w) / 100
                if target < ci.low || target > ci.high {
                    r.problems.append(
                        "the split is off beyond chance: the canary answered \(percent(r.canaryShare!)) of \(answered) "
                            + "requests (99% interval \(percent(ci.low))–\(percent(ci.high))), the weight is \(w)%")
                }
            }
        }
        if answered == 0 && !plain.isEmpty { r.problems.append("no request without the header was answered") }
        if !r.failures.isEmpty {
            let total = r.failures.values.reduce(0, +)
            let first = r.failures.max { $0.value < $1.value }!.key
            r.problems.append("\(total) of \(r.sent) requests failed (\(first))")
        }
        if r.sent < planned {
            r.problems.append("only \(r.sent) of \(planned) requests were sent within the time bound")
        }
        return r
    }

    static func percent(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }

    /// The version in a `/version.json` answer, or why the answer is not one.
    public static func outcome(status: Int, contentType: String?, body: [UInt8]) -> Outcome {
        guard status == 200 else { return .failure("HTTP \(status)") }
        if let t = contentType?.lowercased(), t.contains("html") {
            return .failure("an HTML page, not version.json (is /version.json published? stamp build --public-version)")
        }
        guard let j = try? JSONValue.parse(body), let v = j["version"]?.stringValue else {
            return .failure("not a version.json (no \"version\" string)")
        }
        return .version(v)
    }

    /// Runs `count` requests without the header and `headerCount` with it on `workers`
    /// threads, none started after `deadline`; `fetch(withHeader)` makes one.
    public static func probe(
        count: Int, headerCount: Int, workers: Int, deadline: Date, fetch: @Sendable (Bool) -> Outcome
    ) -> (plain: [Outcome], withHeader: [Outcome]) {
        // Interleaved, so a time bound cuts both kinds alike.
        let total = count + headerCount
        // Exactly `headerCount` of the `total` requests carry the header, spread evenly.
        let plan = (0..<total).map { i in (i + 1) * headerCount / total > i * headerCount / total }
        let state = Mutex<(next: Int, plain: [Outcome], header: [Outcome])>((0, [], []))
        DispatchQueue.concurrentPerform(iterations: max(1, min(workers, total))) { _ in
            while true {
                let i: Int? = state.withLock { s in
                    guard s.next < total, Date() < deadline else { return nil }
                    s.next += 1
                    return s.next - 1
                }
                guard let i else { return }
                let o = fetch(plan[i])
                state.withLock { s in if plan[i] { s.header.append(o) } else { s.plain.append(o) } }
            }
        }
        return state.withLock { ($0.plain, $0.header) }
    }

    // MARK: - Sticky sessions

    /// One client's session: the versions it was answered with, in order.
    public struct Session: Sendable {
        public var versions: [String] = []
        public var failures = 0
        /// The versions it met (one, when the split is sticky).
        public var distinct: Set<String> { Set(versions) }
    }

    /// `clients` clients, each sending `requests` requests one after another and keeping the
    /// cookie `cookie` as a browser does (the last Set-Cookie of that name wins). `fetch` takes
    /// the cookie to send (nil: none) and returns the outcome and the cookie's new value.
    public static func sessions(
        clients: Int, requests: Int, deadline: Date,
        fetch: @Sendable (String?) -> (Outcome, String?)
    ) -> [Session] {
        let results = Mutex<[Int: Session]>([:])
        DispatchQueue.concurrentPerform(iterations: max(1, clients)) { c in
            var session = Session()
            var cookie: String?
            for _ in 0..<requests where Date() < deadline {
                let (o, set) = fetch(cookie)
                if let set { cookie = set }
                switch o {
                case .version(let v): session.versions.append(v)
                case .failure: session.failures += 1
                }
            }
            results.withLock { $0[c] = session }
        }
        return results.withLock { r in (0..<max(1, clients)).compactMap { r[$0] } }
    }

    /// The value a Set-Cookie header gives `name`, if it names it.
    public static func cookieValue(_ setCookie: String, name: String) -> String? {
        let first = setCookie.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
        guard let eq = first.firstIndex(of: "=") else { return nil }
        guard first[..<eq].trimmingCharacters(in: .whitespaces) == name else { return nil }
        return String(first[first.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
    }

    /// Problems of the sessions: a client that met two versions is not held by its cookie.
    public static func judge(sessions: [Session], cookie: String) -> [String] {
        var problems: [String] = []
        for (i, s) in sessions.enumerated() where s.distinct.count > 1 {
            let counts = Dictionary(grouping: s.versions, by: { $0 }).mapValues(\.count)
            problems.append(
                "client \(i + 1) holding the \(cookie) cookie met "
                    + counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value) times" }.joined(separator: ", ")
                    + ": the split is not sticky")
        }
        if sessions.allSatisfy({ $0.versions.isEmpty }) {
            problems.append("no client session got an answer")
        }
        return problems
    }
}
