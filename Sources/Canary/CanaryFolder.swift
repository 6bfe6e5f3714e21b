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
    /// Files that become a copy of another's text.
    private var copied: [String: String] = [:]

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

    func rules() throws -> any MeshRules.Type {
        guard let mesh else {
            throw CanaryError.badInput("\(path): no VirtualService, HTTPRoute or Rollout: not a canary folder")
        }
        return mesh.rules
    }

    /// Where each document of `kind` is (optionally only the one named `name`).
    func find(_ kind: String, name: String? = nil) -> [At] {
        files.keys.sorted().flatMap { file in
            files[file]!.enumerated().compactMap { i, doc in
                doc["kind"]?.text == kind && (name == nil || doc["metadata"]?["name"]?.text == name) ? (file, i) : nil
            }
        }
    }

    func doc(_ at: At) -> Node { files[at.file]![at.index] }

    /// The app's name: the label stamp's objects carry.
    var appName: String {
        for kind in ["Rollout", "Deployment", "Service"] {
            for at in find(kind) { if let a = doc(at)["metadata"]?["labels"]?["app"]?.text { return a } }
        }
        return "app"
    }

    /// The namespace kustomization.yaml sets, if any.
    var namespace: String? {
        find("Kustomization").first.flatMap { doc($0)["namespace"]?.text }
            ?? files["kustomization.yaml"]?.first?["namespace"]?.text
    }

    /// The version a track's Deployment runs.
    func trackVersion(_ track: String) -> String? {
        (try? deployment(track)).flatMap { doc($0)["spec"]?["template"]?["metadata"]?["labels"]?["version"]?.text }
    }

    /// Sets the value at `path` in a document: in place in the text when the value is there (a
    /// scalar with its position), else by writing the file anew.
    func set(_ at: At, _ path: [Step], _ value: Node) {
        var d = files[at.file]![at.index]
        let old = Self.node(d, path)
        if let scalar = old?.scalar, scalar.string == value.scalar?.string { return }
        if let mark = old?.mark, old?.scalar != nil, value.scalar != nil, copied[at.file] == nil {
            edits[at.file, default: []].append((mark.line, mark.column, Self.inline(value)))
        } else {
            rewritten.insert(at.file)
        }
        Self.assign(&d, path[...], value)
        files[at.file]![at.index] = d
    }

    /// Removes a mapping key (the file is written anew).
    func remove(_ at: At, _ path: [Step]) {
        guard case .key(let last)? = path.last, Self.node(doc(at), path) != nil else { return }
        var d = files[at.file]![at.index]
        var parent = Self.node(d, Array(path.dropLast())) ?? Y.map([])
        guard var m = parent.mapping else { return }
        m[Node(last)] = nil
        parent = .mapping(m)
        Self.assign(&d, path.dropLast()[...], parent)
        files[at.file]![at.index] = d
        rewritten.insert(at.file)
    }

    /// `to` becomes a byte copy of `from` as read (its applied text, a user's edits kept).
    func copyFile(from: String, to: String) {
        guard let text = texts[from], let docs = files[from] else { return }
        copied[to] = text
        files[to] = docs
        edits[to] = nil
        rewritten.remove(to)
    }

    /// The claim a workload's pods mount.
    func claimOf(_ at: At) -> String? {
        (doc(at)["spec"]?["template"]?["spec"]?["volumes"]?.items ?? []).compactMap {
            $0["persistentVolumeClaim"]?["claimName"]?.text
        }.first
    }

    func setClaimName(_ at: At, from old: String, to new: String) {
        for (i, v) in (doc(at)["spec"]?["template"]?["spec"]?["volumes"]?.items ?? []).enumerated()
        where v["persistentVolumeClaim"]?["claimName"]?.text == old {
            set(
                at, ["spec", "template", "spec", "volumes", .index(i), "persistentVolumeClaim", "claimName"], Y.str(new)
            )
        }
    }

    /// A workload runs `image` (every container that ran its old image) and carries `version`.
    func setWorkload(_ at: At, image: String, version: String) throws {
        let d = doc(at)
        guard let old = Self.containerImage(d["spec"]?["template"]) else {
            throw CanaryError.badInput("\(path)/\(at.file): \(Objects.name(d)) has no container image")
        }
        for group in ["initContainers", "containers"] {
            for (i, c) in (d["spec"]?["template"]?["spec"]?[group]?.items ?? []).enumerated()
            where c["image"]?.text == old {
                set(at, ["spec", "template", "spec", .key(group), .index(i), "image"], Y.str(image))
            }
        }
        for key in ["version", "app.kubernetes.io/version"] {
            if d["spec"]?["template"]?["metadata"]?["labels"]?[key] != nil {
                set(at, ["spec", "template", "metadata", "labels", .key(key)], Y.str(version))
            }
            if d["metadata"]?["labels"]?[key] != nil { set(at, ["metadata", "labels", .key(key)], Y.str(version)) }
        }
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
    func deployment(_ track: String) throws -> At {
        let found = find("Deployment").filter {
            doc($0)["spec"]?["template"]?["metadata"]?["labels"]?["track"]?.text == track
        }
        guard found.count == 1 else {
            throw CanaryError.badInput(
                "\(path): \(found.count) Deployments with pod label track=\(track); a canary folder has one each")
        }
        return found[0]
    }

    static func containerImage(_ template: Node?) -> String? {
        template?["spec"]?["containers"]?[0]?["image"]?.text
    }

    // MARK: - Operations

    /// Sends `percent` of the requests without the header (and no sticky cookie) to the canary.
    public func setWeight(_ percent: Int) throws {
        guard (0...100).contains(percent) else { throw CanaryError.usage("weight \(percent): a percentage, 0 to 100") }
        try rules().setWeight(self, percent)
    }

    /// The canary becomes the stable version. Returns what is left for the user to do.
    @discardableResult public func promote() throws -> [String] { try rules().promote(self) }

    /// Traffic back to stable. Returns what is left for the user to do.
    @discardableResult public func rollback() throws -> [String] { try rules().rollback(self) }

    /// The next cycle's canary, on a claim of its own.
    @discardableResult public func next(_ n: NextCanary) throws -> [String] { try rules().next(self, n) }

    /// Argo Rollouts: the template runs the recorded canary.
    @discardableResult public func start() throws -> [String] {
        guard mesh == .argoRollouts else {
            throw CanaryError.usage(
                "stamp canary start is for --mesh argo-rollouts; with two Deployments the canary runs from render")
        }
        return try ArgoRules.start(self)
    }

    /// The weight the folder sends to the canary now.
    public var weight: Int? { mesh.flatMap { $0.rules.weight(self) } }

    /// The versions the folder runs: the stable and canary Deployments' (or, for a Rollout, the
    /// recorded ones).
    public var versions: (stable: String?, canary: String?) {
        if let at = find("Rollout").first {
            let a = doc(at)["metadata"]?["annotations"]
            return (a?[RolloutKeys.stableVersion]?.text, a?[RolloutKeys.canaryVersion]?.text)
        }
        return (trackVersion("stable"), trackVersion("canary"))
    }

    /// The sticky cookie's name, when the routes set one.
    public var stickyCookie: String? {
        let text = texts.values.joined()
        let name = Sticky.name(appName)
        return text.contains(name + "=") ? name : nil
    }

    // MARK: - Checks

    /// The objects the folder applies: `kubectl kustomize` of it where kubectl is on PATH (what
    /// `kubectl apply -k` applies: patches, name prefixes, generators), else its files as they
    /// are (and a note saying so).
    func objects(build: Bool = true) -> (objects: Objects, note: String?, problem: String?) {
        let fromFiles = Objects(
            all: files.keys.sorted().flatMap { files[$0]! }.filter {
                $0["kind"]?.text != nil && $0["apiVersion"]?.text != nil && $0["kind"]?.text != "Kustomization"
            })
        if !build { return (fromFiles, nil, nil) }
        guard let kubectl = Self.which("kubectl") else {
            return (
                fromFiles,
                "kubectl is not on PATH: checked the files as written (patches, prefixes and generators "
                    + "of kustomization.yaml not applied)", nil
            )
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: kubectl)
        p.arguments = ["kustomize", path]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { return (fromFiles, "kubectl cannot be run (\(error)): checked the files", nil) }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            let line = String(decoding: errData, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
            return (fromFiles, nil, "kubectl kustomize \(path) fails: \(line.prefix(300))")
        }
        do {
            let docs = try Yams.compose_all(yaml: String(decoding: outData, as: UTF8.self)).map { $0 }
            return (Objects(all: docs), nil, nil)
        } catch {
            return (fromFiles, nil, "kubectl kustomize \(path) printed no YAML: \(error)")
        }
    }

    static func which(_ command: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(command)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// What must hold in a canary folder, on what it applies; each problem as one line.
    /// `allowTag`: images may be referenced by tag.
    public func check(allowTag: Bool = false, build: Bool = true) -> (problems: [String], notes: [String]) {
        let (o, note, buildProblem) = objects(build: build)
        var problems = buildProblem.map { [$0] } ?? []
        problems += o.noSplit()
        problems += o.commonProblems(allowTag: allowTag)
        problems += o.openCanaryProblems()
        problems += o.of("Rollout").isEmpty ? IstioRules.problems(o) : ArgoRules.problems(o)
        problems += GatewayAPIRules.problems(o)
        problems += checkWeights(o)
        var seen = Set<String>()
        return (problems.filter { seen.insert($0).inserted }, note.map { [$0] } ?? [])
    }

    /// The weighted routes sum to 100 (Istio, Gateway API) or the Rollout's weights are
    /// percentages.
    func checkWeights(_ o: Objects) -> [String] {
        var problems: [String] = []
        for vs in o.of("VirtualService") {
            for r in vs["spec"]?["http"]?.items ?? [] {
                let weights = (r["route"]?.items ?? []).compactMap { $0["weight"]?.int }
                if weights.count > 1 && weights.reduce(0, +) != 100 {
                    problems.append(
                        "VirtualService \(Objects.name(vs)): route \(r["name"]?.text ?? "") weights sum to "
                            + "\(weights.reduce(0, +)), not 100")
                }
                if weights.contains(where: { $0 < 0 }) {
                    problems.append("VirtualService \(Objects.name(vs)): a negative weight")
                }
            }
        }
        for route in o.of("HTTPRoute") {
            for r in route["spec"]?["rules"]?.items ?? [] {
                let weights = (r["backendRefs"]?.items ?? []).map { $0["weight"]?.int ?? 1 }
                if weights.count > 1 && weights.reduce(0, +) != 100 {
                    problems.append(
                        "HTTPRoute \(Objects.name(route)): a weighted rule sums to \(weights.reduce(0, +)), not 100")
                }
            }
        }
        return problems
    }

    static func pinned(_ image: String) -> Bool {
        guard let at = image.range(of: "@sha256:") else { return false }
        let hex = image[at.upperBound...]
        return hex.count == 64 && hex.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    // MARK: - Writing

    /// What `save` did: the files it changed, what `check` finds in the result (written
    /// anyway only when forced), and notes.
    public struct Saved {
        public var changed: [String]
        public var problems: [String]
        public var notes: [String]
    }

    /// Writes the files an operation changed, each whole under a temporary name and renamed,
    /// then checks what the folder now applies; when that is not a safe canary the files go
    /// back as they were and nothing is changed, unless `force` (rollback, which only ever
    /// lowers exposure, always writes and reports the problems).
    public func save(allowTag: Bool = false, force: Bool = false) throws -> Saved {
        let changed = Set(edits.keys).union(rewritten).union(copied.keys).sorted()
        var before: [String: String?] = [:]
        for name in changed {
            let text: String
            if let c = copied[name] {
                text = c
            } else if rewritten.contains(name) {
                text = try Y.text(files[name]!)
            } else {
                text = Self.apply(edits[name]!, to: texts[name]!)
            }
            before[name] = texts[name]
            try Self.write(path + "/" + name, text)
            texts[name] = text
        }
        edits = [:]
        rewritten = []
        copied = [:]
        let (problems, notes) = check(allowTag: allowTag)
        if !problems.isEmpty && !force {
            for (name, old) in before {
                if let old {
                    try Self.write(path + "/" + name, old)
                } else {
                    try? FileManager.default.removeItem(atPath: path + "/" + name)
                }
            }
            throw CanaryError.badInput(
                "\(path): not changed, the result would not be a safe canary: " + problems.joined(separator: "; "))
        }
        return Saved(changed: changed, problems: problems, notes: notes)
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
            // stamp's own files (the resources a user listed are not in the staging folder).
            let problems = try CanaryFolder(path: staging).check(allowTag: allowTag, build: false).problems
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
