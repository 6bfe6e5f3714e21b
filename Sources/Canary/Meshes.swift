import Foundation
import Yams

/// One mesh's rules: what it renders, how its folder's fields are edited, and what its
/// controller does with them (written as checks on the objects a folder applies).
protocol MeshRules {
    static func files(_ s: CanarySpec) -> [(String, [Node])]
    /// The percent of requests without the header that reach the canary now.
    static func weight(_ f: CanaryFolder) -> Int?
    static func setWeight(_ f: CanaryFolder, _ percent: Int) throws
    /// Returns what the user still has to do (nothing for meshes whose folder is the truth).
    static func promote(_ f: CanaryFolder) throws -> [String]
    static func rollback(_ f: CanaryFolder) throws -> [String]
    static func next(_ f: CanaryFolder, _ n: NextCanary) throws -> [String]
    static func problems(_ o: Objects) -> [String]
}

/// `stamp canary next`: the canary of the next cycle.
public struct NextCanary: Sendable {
    public var image: ReleaseImage
    public var storage: CanaryStorage?
    public var weight: Int
    public init(image: ReleaseImage, storage: CanaryStorage?, weight: Int) {
        self.image = image
        self.storage = storage
        self.weight = weight
    }
}

typealias At = (file: String, index: Int)

/// What Istio and Gateway API share: two Deployments and their claims, edited the same way.
enum TwoDeployments {
    static func files(_ s: CanarySpec) -> [(String, [Node])] {
        let stableClaim = Workloads.claimName(s, .stable)
        return [
            ("deployment-stable.yaml", [Workloads.deployment(s, .stable)]),
            ("deployment-canary.yaml", [Workloads.deployment(s, .canary)]),
        ]
            + (s.stateful
                ? [
                    (
                        "storage-stable.yaml",
                        [
                            Workloads.claim(
                                s, name: stableClaim, track: .stable, version: nil, cloneOf: nil, storage: nil)
                        ]
                    ),
                    (
                        "storage-canary.yaml",
                        [
                            Workloads.claim(
                                s, name: Workloads.claimName(s, .canary), track: .canary, version: s.canary.version,
                                cloneOf: s.storage == .clone ? stableClaim : nil, storage: s.storage)
                        ]
                    ),
                ] : [])
    }

    /// The stable Deployment runs the canary's image and carries its version.
    static func promote(_ f: CanaryFolder) throws {
        let canary = f.doc(try f.deployment("canary"))
        guard let image = CanaryFolder.containerImage(canary["spec"]?["template"]),
            let version = canary["spec"]?["template"]?["metadata"]?["labels"]?["version"]?.text
        else { throw CanaryError.badInput("\(f.path): the canary Deployment has no image or version label") }
        try f.setWorkload(try f.deployment("stable"), image: image, version: version)
    }

    /// The canary Deployment runs the next image, on a claim of its own.
    static func next(_ f: CanaryFolder, _ n: NextCanary) throws {
        let at = try f.deployment("canary")
        try f.setWorkload(at, image: n.image.reference, version: n.image.version)
        let app = f.doc(at)["metadata"]?["labels"]?["app"]?.text ?? f.appName
        guard let old = f.claimOf(at) else { return }
        let stableClaim = f.claimOf(try f.deployment("stable"))
        let claimAt = f.find("PersistentVolumeClaim", name: old).first
        let wasClone = claimAt.map { f.doc($0)["spec"]?["dataSource"] != nil } ?? false
        let storage = n.storage ?? (wasClone ? .clone : .fresh)
        let name = Claims.canary(app, version: n.image.version, storage: storage)
        f.setClaimName(at, from: old, to: name)
        guard let claimAt else { return }
        f.set(claimAt, ["metadata", "name"], Y.str(name))
        if f.doc(claimAt)["metadata"]?["labels"]?["version"] != nil {
            f.set(claimAt, ["metadata", "labels", "version"], Y.str(n.image.version))
        }
        f.set(claimAt, ["metadata", "annotations", .key(StampKeys.storage)], Y.str(storage.rawValue))
        if storage == .clone, let stableClaim {
            f.set(
                claimAt, ["spec", "dataSource"],
                Y.map([("kind", Y.str("PersistentVolumeClaim")), ("name", Y.str(stableClaim))]))
        } else if wasClone {
            f.remove(claimAt, ["spec", "dataSource"])
        }
    }
}

/// A mesh over two Deployments: promote, rollback and next are the same edits; each mesh says
/// where its sticky cookie's version is written.
protocol TwoDeploymentRules: MeshRules {
    /// The version a track's sticky rule matches and the cookie its weighted route gives.
    static func setCookieVersion(_ f: CanaryFolder, track: String, version: String)
}

extension TwoDeploymentRules {
    static func promote(_ f: CanaryFolder) throws -> [String] {
        try TwoDeployments.promote(f)
        if let v = f.trackVersion("stable") { setCookieVersion(f, track: "stable", version: v) }
        try setWeight(f, 0)
        return []
    }

    static func rollback(_ f: CanaryFolder) throws -> [String] {
        try setWeight(f, 0)
        return []
    }

    static func next(_ f: CanaryFolder, _ n: NextCanary) throws -> [String] {
        try TwoDeployments.next(f, n)
        setCookieVersion(f, track: "canary", version: n.image.version)
        try setWeight(f, n.weight)
        return []
    }
}

// MARK: - Istio

enum IstioRules: TwoDeploymentRules {
    static func files(_ s: CanarySpec) -> [(String, [Node])] {
        TwoDeployments.files(s) + [
            ("service.yaml", [Workloads.service(s, name: s.app, track: nil)]),
            ("destinationrule.yaml", [destinationRule(s)]),
            ("virtualservice.yaml", [virtualService(s, http: routes(s))]),
        ]
    }

    /// Subsets select by track, a label that never changes: by version, both subsets would hold
    /// both pods after a promotion (a subset filters the Service's endpoints by its labels).
    static func destinationRule(_ s: CanarySpec) -> Node {
        Y.map([
            ("apiVersion", Y.str("networking.istio.io/v1")), ("kind", Y.str("DestinationRule")),
            ("metadata", Workloads.metadata(s.app, labels: [("app", s.app)])),
            (
                "spec",
                Y.map([
                    ("host", Y.str(s.app)),
                    (
                        "subsets",
                        Y.seq(
                            ["stable", "canary"].map { t in
                                Y.map([("name", Y.str(t)), ("labels", Y.labels([("track", t)]))])
                            })
                    ),
                ])
            ),
        ])
    }

    static func destination(_ s: CanarySpec, _ t: String, weight: Int?, cookie: String? = nil) -> Node {
        Y.map([
            ("destination", Y.map([("host", Y.str(s.app)), ("subset", Y.str(t))])),
            ("weight", weight.map(Y.int)),
            (
                "headers",
                cookie.map { c in
                    Y.map([("response", Y.map([("add", Y.map([("set-cookie", Y.str(Sticky.setCookie(s.app, c)))]))]))])
                }
            ),
        ])
    }

    /// Testers' header first (the first matching rule wins), then the sticky cookie of each
    /// version, then the weights, whose answers set the cookie.
    static func routes(_ s: CanarySpec) -> [Node] {
        var http: [Node] = [
            Y.map([
                ("name", Y.str("canary-header")),
                (
                    "match",
                    Y.seq([Y.map([("headers", Y.map([(s.headerName, Y.map([("exact", Y.str(s.headerValue))]))]))])])
                ),
                ("route", Y.seq([destination(s, "canary", weight: nil)])),
            ])
        ]
        func cookieMatch(_ version: String) -> Node {
            Y.seq([Y.map([("headers", Y.map([("cookie", Y.map([("regex", Y.str(Sticky.regex(s.app, version)))]))]))])])
        }
        if s.sticky {
            http.append(
                Y.map([
                    ("name", Y.str("sticky-stable")), ("match", cookieMatch(s.stable.version)),
                    ("route", Y.seq([destination(s, "stable", weight: nil)])),
                ]))
            http.append(
                Y.map([
                    ("name", Y.str("sticky-canary")), ("match", cookieMatch(s.canary.version)),
                    (
                        "route",
                        Y.seq([
                            destination(s, "stable", weight: s.weight > 0 ? 0 : 100),
                            destination(s, "canary", weight: s.weight > 0 ? 100 : 0),
                        ])
                    ),
                ]))
        }
        http.append(
            Y.map([
                ("name", Y.str("split")),
                (
                    "route",
                    Y.seq([
                        destination(s, "stable", weight: 100 - s.weight, cookie: s.sticky ? s.stable.version : nil),
                        destination(s, "canary", weight: s.weight, cookie: s.sticky ? s.canary.version : nil),
                    ])
                ),
            ]))
        return http
    }

    /// Bound to the ingress Gateway and the mesh, for the external host and the Service's
    /// in-mesh name (without `gateways` a VirtualService applies to sidecars only).
    static func virtualService(_ s: CanarySpec, http: [Node]) -> Node {
        let gateways = s.gateway.map { $0.isMesh ? ["mesh"] : [$0.istio, "mesh"] } ?? ["mesh"]
        let hosts = s.gateway?.isMesh == true ? [s.app] : [s.host, s.app]
        return Y.map([
            ("apiVersion", Y.str("networking.istio.io/v1")), ("kind", Y.str("VirtualService")),
            ("metadata", Workloads.metadata(s.app, labels: [("app", s.app)])),
            (
                "spec",
                Y.map([
                    ("hosts", Y.seq(hosts.map(Y.str))), ("gateways", Y.seq(gateways.map(Y.str))),
                    ("http", Y.seq(http)),
                ])
            ),
        ])
    }

    /// The rules of the VirtualServices: (where, index, rule).
    static func rules(_ f: CanaryFolder) -> [(At, Int, Node)] {
        f.find("VirtualService").flatMap { at in
            (f.doc(at)["spec"]?["http"]?.items ?? []).enumerated().map { (at, $0.offset, $0.element) }
        }
    }

    static func isCookieRule(_ r: Node) -> Bool {
        (r["match"]?.items ?? []).contains { $0["headers"]?["cookie"] != nil }
    }

    static func weight(_ f: CanaryFolder) -> Int? {
        for (_, _, r) in rules(f) where r["match"] == nil {
            for d in r["route"]?.items ?? [] where d["destination"]?["subset"]?.text == "canary" {
                return d["weight"]?.int
            }
        }
        return nil
    }

    static func setWeight(_ f: CanaryFolder, _ p: Int) throws {
        var found = false
        for (at, i, r) in rules(f) where r["match"] == nil || isCookieRule(r) {
            let route = r["route"]?.items ?? []
            guard route.count == 2 else { continue }
            let sticky = r["match"] != nil
            for (j, d) in route.enumerated() {
                let subset = d["destination"]?["subset"]?.text
                guard subset == "stable" || subset == "canary" else { continue }
                let canaryShare = sticky ? (p > 0 ? 100 : 0) : p
                f.set(
                    at, ["spec", "http", .index(i), "route", .index(j), "weight"],
                    Y.int(subset == "canary" ? canaryShare : 100 - canaryShare))
                found = found || !sticky
            }
        }
        guard found else { throw CanaryError.badInput("\(f.path): no weighted route to the stable and canary subsets") }
    }

    /// Sets the version a sticky rule matches and the cookie the weighted route gives.
    static func setCookieVersion(_ f: CanaryFolder, track subset: String, version: String) {
        let app = f.appName
        for (at, i, r) in rules(f) {
            if isCookieRule(r), r["name"]?.text == "sticky-\(subset)" {
                for (m, match) in (r["match"]?.items ?? []).enumerated() where match["headers"]?["cookie"] != nil {
                    f.set(
                        at, ["spec", "http", .index(i), "match", .index(m), "headers", "cookie", "regex"],
                        Y.str(Sticky.regex(app, version)))
                }
            }
            if r["match"] == nil {
                for (j, d) in (r["route"]?.items ?? []).enumerated()
                where d["destination"]?["subset"]?.text == subset
                    && d["headers"]?["response"]?["add"]?["set-cookie"] != nil
                {
                    f.set(
                        at,
                        ["spec", "http", .index(i), "route", .index(j), "headers", "response", "add", "set-cookie"],
                        Y.str(Sticky.setCookie(app, version)))
                }
            }
        }
    }

    /// Istio's rules, as its docs and code state them (see DESIGN's appendix).
    static func problems(_ o: Objects) -> [String] {
        var problems: [String] = []
        let workloads = o.workloads
        for vs in o.of("VirtualService") {
            let name = Objects.name(vs)
            let gateways = (vs["spec"]?["gateways"]?.items ?? []).compactMap(\.text)
            if gateways.isEmpty {
                problems.append(
                    "VirtualService \(name) has no gateways: it applies to in-mesh callers only and the ingress "
                        + "never splits (bind it to [NAMESPACE/GATEWAY, mesh]; [mesh] if in-mesh is meant)")
            }
            let http = vs["spec"]?["http"]?.items ?? []
            var headerRule = false
            var sawCatchAll = false
            for r in http {
                let matches = r["match"]?.items ?? []
                let headers = matches.flatMap { ($0["headers"]?.mapping ?? [:]).compactMap { $0.key.text } }
                let plainHeader = headers.contains { $0.lowercased() != "cookie" }
                let targets = (r["route"]?.items ?? []).filter { ($0["weight"]?.int ?? 100) > 0 }
                if plainHeader {
                    headerRule = true
                    if sawCatchAll {
                        problems.append(
                            "VirtualService \(name): the header route \(r["name"]?.text ?? "") comes after a route "
                                + "that matches every request: Istio takes the first match, so it is never reached")
                    }
                    if targets.contains(where: { $0["destination"]?["subset"]?.text != "canary" }) {
                        problems.append(
                            "VirtualService \(name): the header route \(r["name"]?.text ?? "") sends requests to "
                                + "another subset than the canary")
                    }
                }
                if matches.isEmpty { sawCatchAll = true }
                for d in r["route"]?.items ?? [] {
                    let host = d["destination"]?["host"]?.text ?? ""
                    if o.service(host) == nil {
                        problems.append(
                            "VirtualService \(name) routes to host \(host), which no Service in the build is (a "
                                + "name prefix or suffix renames Services, not VirtualService hosts)")
                    }
                }
            }
            if !headerRule {
                problems.append("VirtualService \(name): no header route to the canary (testers cannot reach it)")
            }
            if !http.contains(where: { $0["match"] == nil }) {
                problems.append("VirtualService \(name): no route without a match (the split)")
            }
        }
        // Each subset holds the pods of exactly one track.
        for dr in o.of("DestinationRule") {
            let host = dr["spec"]?["host"]?.text ?? ""
            guard let svc = o.service(host) else {
                problems.append("DestinationRule \(Objects.name(dr)): host \(host) is no Service in the build")
                continue
            }
            let selector = Objects.labels(svc["spec"]?["selector"])
            for subset in dr["spec"]?["subsets"]?.items ?? [] {
                let labels = Objects.labels(subset["labels"]).merging(selector) { a, _ in a }
                let tracks = Set(workloads.filter { Objects.selects(labels, $0.podLabels) }.map { $0.track ?? $0.name })
                let sName = subset["name"]?.text ?? ""
                if tracks.isEmpty {
                    problems.append("DestinationRule subset \(sName) selects no pods")
                } else if tracks.count > 1 {
                    problems.append(
                        "DestinationRule subset \(sName) holds the pods of \(tracks.sorted().joined(separator: " and ")): "
                            + "its traffic reaches two databases; select by track")
                } else if ["stable", "canary"].contains(sName) && tracks.first != sName {
                    problems.append("DestinationRule subset \(sName) selects the \(tracks.first!) pods")
                }
            }
        }
        return problems
    }
}

// MARK: - Gateway API

enum GatewayAPIRules: TwoDeploymentRules {
    static func files(_ s: CanarySpec) -> [(String, [Node])] {
        TwoDeployments.files(s) + [
            ("service-stable.yaml", [Workloads.service(s, name: "\(s.app)-stable", track: .stable)]),
            ("service-canary.yaml", [Workloads.service(s, name: "\(s.app)-canary", track: .canary)]),
            ("httproute.yaml", [httpRoute(s)]),
        ]
    }

    static func backend(_ s: CanarySpec, _ t: String, weight: Int?, cookie: String? = nil) -> Node {
        Y.map([
            ("name", Y.str("\(s.app)-\(t)")), ("port", Y.int(s.facts.port ?? 80)), ("weight", weight.map(Y.int)),
            (
                "filters",
                cookie.map { c in
                    Y.seq([
                        Y.map([
                            ("type", Y.str("ResponseHeaderModifier")),
                            (
                                "responseHeaderModifier",
                                Y.map([
                                    (
                                        "add",
                                        Y.seq([
                                            Y.map([
                                                ("name", Y.str("Set-Cookie")),
                                                ("value", Y.str(Sticky.setCookie(s.app, c))),
                                            ])
                                        ])
                                    )
                                ])
                            ),
                        ])
                    ])
                }
            ),
        ])
    }

    static func headerMatch(_ type: String, _ name: String, _ value: String) -> Node {
        Y.seq([
            Y.map([
                (
                    "headers",
                    Y.seq([Y.map([("type", Y.str(type)), ("name", Y.str(name)), ("value", Y.str(value))])])
                )
            ])
        ])
    }

    /// A rule with a header match is more specific than the weighted one whatever the order;
    /// among header rules the first wins.
    static func httpRoute(_ s: CanarySpec) -> Node {
        var rules: [Node] = [
            Y.map([
                ("matches", headerMatch("Exact", s.headerName, s.headerValue)),
                ("backendRefs", Y.seq([backend(s, "canary", weight: nil)])),
            ])
        ]
        if s.sticky {
            rules.append(
                Y.map([
                    ("matches", headerMatch("RegularExpression", "cookie", Sticky.regex(s.app, s.stable.version))),
                    ("backendRefs", Y.seq([backend(s, "stable", weight: nil)])),
                ]))
            rules.append(
                Y.map([
                    ("matches", headerMatch("RegularExpression", "cookie", Sticky.regex(s.app, s.canary.version))),
                    (
                        "backendRefs",
                        Y.seq([
                            backend(s, "stable", weight: s.weight > 0 ? 0 : 100),
                            backend(s, "canary", weight: s.weight > 0 ? 100 : 0),
                        ])
                    ),
                ]))
        }
        rules.append(
            Y.map([
                (
                    "backendRefs",
                    Y.seq([
                        backend(s, "stable", weight: 100 - s.weight, cookie: s.sticky ? s.stable.version : nil),
                        backend(s, "canary", weight: s.weight, cookie: s.sticky ? s.canary.version : nil),
                    ])
                )
            ]))
        let g = s.gateway!
        let parent = Y.map([
            ("name", Y.str(g.name)), ("namespace", g.namespace.map(Y.str)), ("sectionName", g.section.map(Y.str)),
        ])
        return Y.map([
            ("apiVersion", Y.str("gateway.networking.k8s.io/v1")), ("kind", Y.str("HTTPRoute")),
            ("metadata", Workloads.metadata(s.app, labels: [("app", s.app)])),
            (
                "spec",
                Y.map([
                    ("parentRefs", Y.seq([parent])), ("hostnames", Y.seq([Y.str(s.host)])), ("rules", Y.seq(rules)),
                ])
            ),
        ])
    }

    static func rules(_ f: CanaryFolder) -> [(At, Int, Node)] {
        f.find("HTTPRoute").flatMap { at in
            (f.doc(at)["spec"]?["rules"]?.items ?? []).enumerated().map { (at, $0.offset, $0.element) }
        }
    }

    static func headerNames(_ r: Node) -> [String] {
        (r["matches"]?.items ?? []).flatMap {
            ($0["headers"]?.items ?? []).compactMap { $0["name"]?.text?.lowercased() }
        }
    }

    static func isCookieRule(_ r: Node) -> Bool { headerNames(r).contains("cookie") }

    static func track(_ backend: Node) -> String? {
        guard let name = backend["name"]?.text else { return nil }
        return name.hasSuffix("-canary") ? "canary" : name.hasSuffix("-stable") ? "stable" : nil
    }

    static func weight(_ f: CanaryFolder) -> Int? {
        for (_, _, r) in rules(f) where r["matches"] == nil {
            for b in r["backendRefs"]?.items ?? [] where track(b) == "canary" { return b["weight"]?.int }
        }
        return nil
    }

    static func setWeight(_ f: CanaryFolder, _ p: Int) throws {
        var found = false
        for (at, i, r) in rules(f) where r["matches"] == nil || isCookieRule(r) {
            let refs = r["backendRefs"]?.items ?? []
            guard refs.count == 2 else { continue }
            let sticky = r["matches"] != nil
            for (j, b) in refs.enumerated() {
                guard let t = track(b) else { continue }
                let canaryShare = sticky ? (p > 0 ? 100 : 0) : p
                f.set(
                    at, ["spec", "rules", .index(i), "backendRefs", .index(j), "weight"],
                    Y.int(t == "canary" ? canaryShare : 100 - canaryShare))
                found = found || !sticky
            }
        }
        guard found else { throw CanaryError.badInput("\(f.path): no weighted rule to the stable and canary Services") }
    }

    static func setCookieVersion(_ f: CanaryFolder, track t: String, version: String) {
        let app = f.appName
        for (at, i, r) in rules(f) {
            let refs = r["backendRefs"]?.items ?? []
            // The stable's sticky rule has one backend; the canary's two (its weights follow the split).
            if isCookieRule(r) && (t == "stable" ? refs.count == 1 : refs.count == 2) {
                for (m, match) in (r["matches"]?.items ?? []).enumerated() {
                    for (h, header) in (match["headers"]?.items ?? []).enumerated()
                    where header["name"]?.text?.lowercased() == "cookie" {
                        f.set(
                            at, ["spec", "rules", .index(i), "matches", .index(m), "headers", .index(h), "value"],
                            Y.str(Sticky.regex(app, version)))
                    }
                }
            }
            if r["matches"] == nil {
                for (j, b) in refs.enumerated() where track(b) == t {
                    for (k, filter) in (b["filters"]?.items ?? []).enumerated() {
                        for (a, add) in (filter["responseHeaderModifier"]?["add"]?.items ?? []).enumerated()
                        where add["name"]?.text?.lowercased() == "set-cookie" {
                            f.set(
                                at,
                                [
                                    "spec", "rules", .index(i), "backendRefs", .index(j), "filters", .index(k),
                                    "responseHeaderModifier", "add", .index(a), "value",
                                ], Y.str(Sticky.setCookie(app, version)))
                        }
                    }
                }
            }
        }
    }

    /// Gateway API's rules: parentRefs name a Gateway by name (namespace and section apart),
    /// hostnames are lower-case RFC 1123, backends are Services in the build.
    static func problems(_ o: Objects) -> [String] {
        var problems: [String] = []
        for route in o.of("HTTPRoute") {
            let name = Objects.name(route)
            for p in route["spec"]?["parentRefs"]?.items ?? [] {
                let parent = p["name"]?.text ?? ""
                if parent.contains("/") || parent.contains(":") {
                    problems.append(
                        "HTTPRoute \(name): parentRef \"\(parent)\" is not a Gateway name (namespace and sectionName "
                            + "are fields of their own): the route never attaches")
                }
            }
            for h in route["spec"]?["hostnames"]?.items ?? [] {
                if let host = h.text, (try? Hosts.check(host)) == nil {
                    problems.append("HTTPRoute \(name): hostname \(host) is not a lower-case DNS name")
                }
            }
            var headerRule = false
            for r in route["spec"]?["rules"]?.items ?? [] {
                let refs = r["backendRefs"]?.items ?? []
                for b in refs where b["kind"] == nil || b["kind"]?.text == "Service" {
                    if o.service(b["name"]?.text ?? "") == nil {
                        problems.append(
                            "HTTPRoute \(name) sends traffic to \(b["name"]?.text ?? ""), which no Service in the build "
                                + "is")
                    }
                }
                if headerNames(r).contains(where: { $0 != "cookie" }) {
                    headerRule = true
                    let live = refs.filter { ($0["weight"]?.int ?? 1) > 0 }
                    if live.contains(where: { track($0) != "canary" }) {
                        problems.append(
                            "HTTPRoute \(name): the header rule sends requests to another backend than the canary")
                    }
                }
            }
            if !headerRule {
                problems.append("HTTPRoute \(name): no header rule to the canary (testers cannot reach it)")
            }
        }
        return problems
    }
}
