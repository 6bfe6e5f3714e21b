import Foundation
import IO
import Yams

/// A rendered canary folder, read back: `weight`, `promote` and `rollback` change only the
/// fields they own (weights, the stable image and its version labels), in place in the text:
/// each value is replaced where it stands, so every other byte of the file (a user's fields,
/// comments, formatting) stays. Only a field that is missing is added by writing the file anew.
/// `check` states what must hold before anything is written.
public final class CanaryFolder {
    public let path: String
    /// File name → its documents, for every `*.yaml` / `*.yml` in the folder.
    private(set) var files: [String: [Node]] = [:]
    /// File name → its text as read.
    private var texts: [String: String] = [:]
    /// Values replaced in place: file → (line, column, new text), positions of the text as read.
    private var edits: [String: [(line: Int, column: Int, text: String)]] = [:]
    /// Files written anew (a field was added).
    private var rewritten: Set<String> = []

    /// A step of a path into a document: a mapping key or a sequence index.
    enum Step: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
        case key(String)
        case index(Int)
        init(stringLiteral s: String) { self = .key(s) }
        init(integerLiteral i: Int) { self = .index(i) }
    }

    public init(path: String) throws {
        self.path = path
        guard Path.isDirectory(path) else {
            throw CanaryError.usage("\(path): not a folder (stamp canary render writes one)")
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for name in names.sorted() where name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
            let text: String
            do { text = try String(contentsOfFile: path + "/" + name, encoding: .utf8) } catch {
                throw CanaryError.badInput("\(path)/\(name): cannot be read: \(error.localizedDescription)")
            }
            texts[name] = text
            do { files[name] = try Array(Yams.compose_all(yaml: text)) } catch {
                throw CanaryError.badInput("\(path)/\(name): not YAML: \(error)")
            }
        }
    }

    public var mesh: Mesh? {
        if !find("Rollout").isEmpty { return .argoRollouts }
        if !find("HTTPRoute").isEmpty { return .gatewayAPI }
        if !find("VirtualService").isEmpty { return .istio }
        return nil
    }

    /// Where each document of `kind` is (optionally only the one named `name`).
    func find(_ kind: String, name: String? = nil) -> [(file: String, index: Int)] {
        files.keys.sorted().flatMap { file in
            files[file]!.enumerated().compactMap { i, doc in
                doc["kind"]?.text == kind && (name == nil || doc["metadata"]?["name"]?.text == name) ? (file, i) : nil
            }
        }
    }

    func doc(_ at: (file: String, index: Int)) -> Node { files[at.file]![at.index] }

    /// Sets the value at `path` in a document: in place in the text when the value is there (a
    /// scalar with its position), else by writing the file anew.
    func set(_ at: (file: String, index: Int), _ path: [Step], _ value: Node) {
        var d = files[at.file]![at.index]
        let old = Self.node(d, path)
        if let scalar = old?.scalar, scalar.string == value.scalar?.string { return }
        if let mark = old?.mark, old?.scalar != nil {
            edits[at.file, default: []].append((mark.line, mark.column, Self.inline(value)))
        } else {
            rewritten.insert(at.file)
        }
        Self.assign(&d, path[...], value)
        files[at.file]![at.index] = d
    }

    static func node(_ n: Node?, _ path: [Step]) -> Node? {
        var n = n
        for step in path {
            switch step {
            case .key(let k): n = n?[k]
            case .index(let i): n = n?.sequence.flatMap { i < $0.count ? $0[i] : nil }
            }
        }
        return n
    }

    static func assign(_ n: inout Node, _ path: ArraySlice<Step>, _ value: Node) {
        guard let step = path.first else {
            n = value
            return
        }
        switch step {
        case .key(let k):
            var child = n[k] ?? Y.map([])
            assign(&child, path.dropFirst(), value)
            n[k] = child
        case .index(let i):
            guard var seq = n.sequence, i < seq.count else { return }
            var child = seq[i]
            assign(&child, path.dropFirst(), value)
            seq[i] = child
            n = .sequence(seq)
        }
    }

    /// A scalar as it is written on one line (quoted when YAML would read it as another type).
    static func inline(_ value: Node) -> String {
        ((try? Yams.serialize(node: value, width: -1)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: "\n...", with: "")
    }

    /// `text` with each scalar at (line, column) replaced by its new text: the old one's extent
    /// is its quoted string, or a plain scalar up to a comment or the end of the line.
    static func apply(_ edits: [(line: Int, column: Int, text: String)], to text: String) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { Array($0.unicodeScalars) }
        for e in edits.sorted(by: { ($0.line, $0.column) > ($1.line, $1.column) }) {
            guard e.line - 1 < lines.count else { continue }
            var line = lines[e.line - 1]
            let start = e.column - 1
            guard start < line.count else { continue }
            var end = start
            if line[start] == "\"" || line[start] == "'" {
                let q = line[start]
                end += 1
                while end < line.count {
                    if line[end] == "\\" && q == "\"" {
                        end += 2
                        continue
                    }
                    if line[end] == q {
                        if q == "'" && end + 1 < line.count && line[end + 1] == "'" {
                            end += 2
                            continue
                        }
                        end += 1
                        break
                    }
                    end += 1
                }
            } else {
                while end < line.count && !(line[end] == "#" && end > start && line[end - 1] == " ") { end += 1 }
                while end > start && line[end - 1] == " " { end -= 1 }
            }
            line.replaceSubrange(start..<min(end, line.count), with: Array(e.text.unicodeScalars))
            lines[e.line - 1] = line
        }
        return lines.map { String(String.UnicodeScalarView($0)) }.joined(separator: "\n")
    }

    /// The one Deployment of a track (`stamp canary render` names them APP-stable, APP-canary).
    func deployment(_ track: String) throws -> (file: String, index: Int) {
        let found = find("Deployment").filter {
            doc($0)["spec"]?["template"]?["metadata"]?["labels"]?["track"]?.text == track
        }
        guard found.count == 1 else {
            throw CanaryError.badInput(
                "\(path): \(found.count) Deployments with pod label track=\(track); a canary folder has one each")
        }
        return found[0]
    }

    // MARK: - Operations

    /// Sends `percent` of the requests without the header to the canary.
    public func setWeight(_ percent: Int) throws {
        guard (0...100).contains(percent) else { throw CanaryError.usage("weight \(percent): a percentage, 0 to 100") }
        switch mesh {
        case .istio:
            for at in find("VirtualService") {
                for (i, r) in (doc(at)["spec"]?["http"]?.items ?? []).enumerated() where r["match"] == nil {
                    for (j, d) in (r["route"]?.items ?? []).enumerated() {
                        let subset = d["destination"]?["subset"]?.text
                        guard subset == "stable" || subset == "canary" else { continue }
                        set(
                            at, ["spec", "http", .index(i), "route", .index(j), "weight"],
                            Y.int(subset == "canary" ? percent : 100 - percent))
                    }
                }
            }
        case .gatewayAPI:
            for at in find("HTTPRoute") {
                for (i, rule) in (doc(at)["spec"]?["rules"]?.items ?? []).enumerated() where rule["matches"] == nil {
                    for (j, b) in (rule["backendRefs"]?.items ?? []).enumerated() {
                        guard let name = b["name"]?.text else { continue }
                        let canary = name.hasSuffix("-canary")
                        guard canary || name.hasSuffix("-stable") else { continue }
                        set(
                            at, ["spec", "rules", .index(i), "backendRefs", .index(j), "weight"],
                            Y.int(canary ? percent : 100 - percent))
                    }
                }
            }
        case .argoRollouts:
            for at in find("Rollout") {
                let steps = doc(at)["spec"]?["strategy"]?["canary"]?["steps"]?.items ?? []
                if let i = steps.firstIndex(where: { $0["setWeight"] != nil }) {
                    set(at, ["spec", "strategy", "canary", "steps", .index(i), "setWeight"], Y.int(percent))
                }
            }
        case nil:
            throw CanaryError.badInput("\(path): no VirtualService, HTTPRoute or Rollout: not a canary folder")
        }
    }

    /// The canary becomes the stable version: the stable Deployment runs the canary's image
    /// and carries its version; the weight goes back to 0 (the header still reaches the
    /// canary Deployment, which now runs the same version).
    public func promote() throws {
        switch mesh {
        case .argoRollouts:
            for at in find("Rollout") {
                let image = containerImage(doc(at)["spec"]?["template"])
                let version = doc(at)["spec"]?["template"]?["metadata"]?["labels"]?["version"]?.text
                if let image { set(at, ["metadata", "annotations", .key(RolloutKeys.stableImage)], Y.str(image)) }
                if let version {
                    set(at, ["metadata", "annotations", .key(RolloutKeys.stableVersion)], Y.str(version))
                }
            }
        case .istio, .gatewayAPI:
            let canary = doc(try deployment("canary"))
            guard let image = containerImage(canary["spec"]?["template"]),
                let version = canary["spec"]?["template"]?["metadata"]?["labels"]?["version"]?.text
            else { throw CanaryError.badInput("\(path): the canary Deployment has no image or version label") }
            try setStable(image: image, version: version)
        case nil:
            throw CanaryError.badInput("\(path): no VirtualService, HTTPRoute or Rollout: not a canary folder")
        }
        try setWeight(0)
    }

    /// Traffic back to stable: weight 0; the header route stays, for testers. With Argo
    /// Rollouts, the pod template goes back to the stable image (Argo aborts the canary).
    public func rollback() throws {
        if mesh == .argoRollouts {
            for at in find("Rollout") {
                let d = doc(at)
                guard let image = d["metadata"]?["annotations"]?[RolloutKeys.stableImage]?.text,
                    let version = d["metadata"]?["annotations"]?[RolloutKeys.stableVersion]?.text
                else {
                    throw CanaryError.badInput(
                        "\(path)/\(at.file): the Rollout has no \(RolloutKeys.stableImage) annotation to roll back to")
                }
                set(at, ["spec", "template", "spec", "containers", 0, "image"], Y.str(image))
                for key in ["version", "app.kubernetes.io/version"] {
                    set(at, ["spec", "template", "metadata", "labels", .key(key)], Y.str(version))
                }
            }
        }
        try setWeight(0)
    }

    private func containerImage(_ template: Node?) -> String? {
        template?["spec"]?["containers"]?[0]?["image"]?.text
    }

    private func setStable(image: String, version: String) throws {
        let at = try deployment("stable")
        set(at, ["spec", "template", "spec", "containers", 0, "image"], Y.str(image))
        for key in ["version", "app.kubernetes.io/version"] {
            set(at, ["spec", "template", "metadata", "labels", .key(key)], Y.str(version))
            if doc(at)["metadata"]?["labels"]?[key] != nil {
                set(at, ["metadata", "labels", .key(key)], Y.str(version))
            }
        }
        for rule in find("DestinationRule") {
            for (i, s) in (doc(rule)["spec"]?["subsets"]?.items ?? []).enumerated() where s["name"]?.text == "stable" {
                set(rule, ["spec", "subsets", .index(i), "labels", "version"], Y.str(version))
            }
        }
    }

    // MARK: - Checks

    /// What must hold in a canary folder; each problem as one line. `allowTag`: images may be
    /// referenced by tag.
    public func check(allowTag: Bool = false) -> [String] {
        var problems: [String] = []
        let workloads = find("Deployment") + find("Rollout")
        var secretsByKey: [String: Set<String>] = [:]
        var claims: [String: String] = [:]
        for at in workloads {
            let d = doc(at)
            let name = d["metadata"]?["name"]?.text ?? at.file
            let template = d["spec"]?["template"]
            for c in template?["spec"]?["containers"]?.items ?? [] {
                let image = c["image"]?.text ?? ""
                if !allowTag && !Self.pinned(image) {
                    problems.append("\(at.file): \(name) runs \(image), not pinned by digest (NAME@sha256:…)")
                }
                for e in c["env"]?.items ?? [] {
                    guard let key = e["name"]?.text, ["JWT_SECRET", "SIG_KEY", "SIG_SALT", "AUTH_TOKEN"].contains(key)
                    else { continue }
                    let secret = e["valueFrom"]?["secretKeyRef"]?["name"]?.text ?? "(a literal value)"
                    secretsByKey[key, default: []].insert(secret)
                }
            }
            // Pods a Deployment selects must carry its selector's labels.
            let podLabels = template?["metadata"]?["labels"]
            for (k, v) in d["spec"]?["selector"]?["matchLabels"]?.mapping ?? [:] {
                if podLabels?[k.text ?? ""]?.text != v.text {
                    problems.append("\(at.file): \(name)'s selector \(k.text ?? "")=\(v.text ?? "") is not on its pods")
                }
            }
            let track = podLabels?["track"]?.text ?? name
            for v in template?["spec"]?["volumes"]?.items ?? [] {
                if let claim = v["persistentVolumeClaim"]?["claimName"]?.text {
                    if let other = claims[claim] {
                        problems.append(
                            "\(at.file): \(name) and \(other) mount the same claim \(claim); the canary must never "
                                + "share the stable's storage")
                    }
                    claims[claim] = "\(name) (\(track))"
                }
            }
        }
        for (key, secrets) in secretsByKey.sorted(by: { $0.key < $1.key }) where secrets.count > 1 {
            problems.append(
                "\(key) comes from \(secrets.sorted().joined(separator: " and ")): both versions must read it from "
                    + "one Secret, or a session opened on one is refused by the other")
        }
        problems += checkWeights()
        // Subsets and Services must select pods that exist.
        let versions = Set(
            workloads.compactMap { doc($0)["spec"]?["template"]?["metadata"]?["labels"]?["version"]?.text })
        for at in find("DestinationRule") {
            for s in doc(at)["spec"]?["subsets"]?.items ?? [] {
                if let v = s["labels"]?["version"]?.text, !versions.contains(v) {
                    problems.append(
                        "\(at.file): subset \(s["name"]?.text ?? "") selects version \(v), which no pod runs")
                }
            }
        }
        let pods = workloads.compactMap { doc($0)["spec"]?["template"]?["metadata"]?["labels"]?.mapping }
        for at in find("Service") {
            let selector = doc(at)["spec"]?["selector"]?.mapping ?? [:]
            let matched = pods.contains { labels in selector.allSatisfy { labels[$0.key]?.text == $0.value.text } }
            if !matched && mesh != .argoRollouts {
                problems.append("\(at.file): Service \(doc(at)["metadata"]?["name"]?.text ?? "") selects no pods")
            }
        }
        return problems
    }

    /// The weighted route sums to 100 (Istio, Gateway API) or the Rollout's weights are
    /// percentages.
    func checkWeights() -> [String] {
        var problems: [String] = []
        for at in find("VirtualService") {
            for r in doc(at)["spec"]?["http"]?.items ?? [] where r["match"] == nil {
                let weights = (r["route"]?.items ?? []).compactMap { $0["weight"]?.int }
                if !weights.isEmpty && weights.reduce(0, +) != 100 {
                    problems.append(
                        "\(at.file): route \(r["name"]?.text ?? "") weights sum to \(weights.reduce(0, +)), not 100")
                }
            }
        }
        for at in find("HTTPRoute") {
            for r in doc(at)["spec"]?["rules"]?.items ?? [] where r["matches"] == nil {
                let weights = (r["backendRefs"]?.items ?? []).map { $0["weight"]?.int ?? 1 }
                if weights.count > 1 && weights.reduce(0, +) != 100 {
                    problems.append("\(at.file): the weighted rule sums to \(weights.reduce(0, +)), not 100")
                }
            }
        }
        for at in find("Rollout") {
            for s in doc(at)["spec"]?["strategy"]?["canary"]?["steps"]?.items ?? [] {
                if let w = s["setWeight"]?.int, !(0...100).contains(w) {
                    problems.append("\(at.file): setWeight \(w) is not a percentage")
                }
            }
        }
        return problems
    }

    /// The versions the folder runs: the stable and canary Deployments' (or, for a Rollout, the
    /// recorded stable and the template's).
    public var versions: (stable: String?, canary: String?) {
        func version(_ d: Node) -> String? { d["spec"]?["template"]?["metadata"]?["labels"]?["version"]?.text }
        if let at = find("Rollout").first {
            let d = doc(at)
            return (d["metadata"]?["annotations"]?[RolloutKeys.stableVersion]?.text, version(d))
        }
        return (
            (try? deployment("stable")).flatMap { version(doc($0)) },
            (try? deployment("canary")).flatMap { version(doc($0)) }
        )
    }

    /// The weight the folder sends to the canary now.
    public var weight: Int? {
        for at in find("VirtualService") + find("HTTPRoute") {
            let d = doc(at)
            for r in d["spec"]?["http"]?.items ?? [] where r["match"] == nil {
                for x in r["route"]?.items ?? [] where x["destination"]?["subset"]?.text == "canary" {
                    return x["weight"]?.int
                }
            }
            for r in d["spec"]?["rules"]?.items ?? [] where r["matches"] == nil {
                for b in r["backendRefs"]?.items ?? [] where b["name"]?.text?.hasSuffix("-canary") == true {
                    return b["weight"]?.int
                }
            }
        }
        for at in find("Rollout") {
            for s in doc(at)["spec"]?["strategy"]?["canary"]?["steps"]?.items ?? [] {
                if let w = s["setWeight"]?.int { return w }
            }
        }
        return nil
    }

    static func pinned(_ image: String) -> Bool {
        guard let at = image.range(of: "@sha256:") else { return false }
        let hex = image[at.upperBound...]
        return hex.count == 64 && hex.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    // MARK: - Writing

    /// Writes the files an operation changed, each whole under a temporary name and renamed,
    /// after `check` passes on the result (nothing is written when it does not).
    public func save(allowTag: Bool = false) throws -> [String] {
        let problems = check(allowTag: allowTag)
        guard problems.isEmpty else {
            throw CanaryError.badInput(
                "\(path): not changed, the result would not be a safe canary: " + problems.joined(separator: "; "))
        }
        let changed = Set(edits.keys).union(rewritten).sorted()
        for name in changed {
            let text = rewritten.contains(name) ? try Y.text(files[name]!) : Self.apply(edits[name]!, to: texts[name]!)
            try Self.write(path + "/" + name, text)
            texts[name] = text
        }
        edits = [:]
        rewritten = []
        return changed
    }

    static func write(_ path: String, _ text: String) throws {
        let f = try WritableFile.temporary(beside: path)
        try f.write(Array(text.utf8))
        try f.commit(to: path)
    }

    /// Renders `spec` into `path` (a new or empty folder, or one stamp rendered before: its
    /// files are replaced, other files are left), after the same checks `save` makes.
    public static func render(_ spec: CanarySpec, into path: String, allowTag: Bool) throws -> [String] {
        if Path.exists(path) && !Path.isDirectory(path) {
            throw CanaryError.usage("--output \(path): exists and is not a folder")
        }
        // Rendering again: the resources a user added to kustomization.yaml stay listed, and the
        // files of stamp's earlier render that this one does not write (another --mesh) go.
        let before =
            (try? String(contentsOfFile: path + "/kustomization.yaml", encoding: .utf8))
            .flatMap { try? Yams.compose(yaml: $0) }?["resources"]?.items.compactMap(\.text) ?? []
        let files = try spec.render(keeping: before.filter { !CanarySpec.fileNames.contains($0) })
        let stale = Set(before).intersection(CanarySpec.fileNames).subtracting(files.map(\.name))
        let staging = path + ".stamp-render-\(getpid())"
        try? FileManager.default.removeItem(atPath: staging)
        do {
            try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
            for (name, docs) in files { try write(staging + "/" + name, try Y.text(docs)) }
            let problems = try CanaryFolder(path: staging).check(allowTag: allowTag)
            guard problems.isEmpty else {
                throw CanaryError.badInput(
                    "the rendered folder would not be a safe canary: " + problems.joined(separator: "; "))
            }
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            for (name, _) in files {
                guard rename(staging + "/" + name, path + "/" + name) == 0 else {
                    throw CanaryError(kind: .io, message: "\(path)/\(name): \(String(cString: strerror(errno)))")
                }
            }
            try? FileManager.default.removeItem(atPath: staging)
            for name in stale { try? FileManager.default.removeItem(atPath: path + "/" + name) }
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
        return files.map(\.name)
    }
}
