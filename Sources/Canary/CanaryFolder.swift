import Foundation
import IO
import Templates
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
    /// Values replaced in place: file → edits at positions of the text as read.
    private var edits: [String: [Edit]] = [:]
    /// The folder's lock (`.stamp-canary.lock`), held from reading to writing.
    private var lockFD: Int32 = -1
    /// File name → its mode as found (kept when it is replaced).
    private var modes: [String: mode_t] = [:]

    /// A scalar replaced where it stands: its position (libyaml's, 1-based, counting every line
    /// break YAML knows), its old text when plain (its exact extent), and the new text.
    struct Edit {
        var line: Int
        var column: Int
        var text: String
        var oldPlain: String?
        init(line: Int, column: Int, text: String, oldPlain: String? = nil) {
            self.line = line
            self.column = column
            self.text = text
            self.oldPlain = oldPlain
        }
    }

    /// At most this much of one file is read; a folder's manifests are small.
    static let maxFileBytes = 4 << 20
    /// At most this many nodes in one file, aliases expanded (an alias bomb stops here).
    static let maxNodes = 200_000
    /// Files written anew (a field was added).
    private var rewritten: Set<String> = []
    /// Files that become a copy of another's text, and which.
    private var copied: [String: String] = [:]
    private var copiedFrom: [String: String] = [:]
    /// What writing did that a user should know.
    private var notes: [String] = []

    /// A step of a path into a document: a mapping key or a sequence index.
    enum Step: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
        case key(String)
        case index(Int)
        init(stringLiteral s: String) { self = .key(s) }
        init(integerLiteral i: Int) { self = .index(i) }
    }

    /// Reads every `*.yaml` / `*.yml` of the folder: regular files only (no symlink out of the
    /// folder, no FIFO, no device), each at most 4 MiB and 200,000 nodes. `lock`: exclusive
    /// (a command that writes; others wait for it), shared (one that reads), or none.
    public enum Lock { case exclusive, shared, none }

    public init(path: String, lock: Lock = .none) throws {
        self.path = path
        guard Path.isDirectory(path) else {
            throw CanaryError.usage("\(path): not a folder (stamp canary render writes one)")
        }
        if lock != .none { try takeLock(exclusive: lock == .exclusive) }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for name in names.sorted() where name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
            let file = path + "/" + name
            var st = stat()
            guard lstat(file, &st) == 0 else { continue }
            guard (st.st_mode & S_IFMT) == S_IFREG else {
                let what = (st.st_mode & S_IFMT) == S_IFLNK ? "a symbolic link" : "not a regular file"
                throw CanaryError.badInput(
                    "\(file): \(what); stamp reads only regular files inside the folder")
            }
            guard Int(st.st_size) <= Self.maxFileBytes else {
                throw CanaryError.badInput(
                    "\(file): \(st.st_size) bytes, over the \(Self.maxFileBytes >> 20) MiB a manifest may "
                        + "have")
            }
            modes[name] = st.st_mode & 0o7777
            let bytes: [UInt8]
            do { bytes = try ReadableFile(file).readAll(limit: Int64(Self.maxFileBytes)) } catch {
                throw CanaryError.badInput("\(file): cannot be read: \(error)")
            }
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw CanaryError.badInput("\(file): not UTF-8 text")
            }
            texts[name] = text
            do { files[name] = try Array(Yams.compose_all(yaml: text)) } catch {
                throw CanaryError.badInput("\(file): not YAML: \(error)")
            }
            var budget = Self.maxNodes
            for d in files[name]! where !Self.within(d, &budget) {
                throw CanaryError.badInput(
                    "\(file): more than \(Self.maxNodes) nodes with its aliases expanded (an alias bomb?)")
            }
        }
    }

    deinit { if lockFD >= 0 { close(lockFD) } }

    /// flock on `.stamp-canary.lock` in the folder, as `oci:` layouts lock `index.json`: two
    /// commands on one folder run one after the other (a weight beside a rollback would undo
    /// it). Waits up to two minutes.
    private func takeLock(exclusive: Bool) throws {
        let fd = open(path + "/.stamp-canary.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            if !exclusive { return }  // a read-only folder can still be checked
            throw CanaryError(
                kind: .io, message: "\(path)/.stamp-canary.lock: \(String(cString: strerror(errno)))")
        }
        lockFD = fd
        let deadline = Date().addingTimeInterval(120)
        while flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, Date() < deadline else {
                throw CanaryError(
                    kind: .io,
                    message: "\(path): another stamp command holds the folder (.stamp-canary.lock)")
            }
            usleep(50_000)
        }
    }

    /// Counts nodes, aliases expanded, down to zero.
    static func within(_ n: Node, _ budget: inout Int) -> Bool {
        budget -= 1
        if budget < 0 { return false }
        switch n {
        case .mapping(let m):
            for (k, v) in m where !within(k, &budget) || !within(v, &budget) { return false }
        case .sequence(let q):
            for v in q where !within(v, &budget) { return false }
        default: break
        }
        return true
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
        if let mark = old?.mark, let scalar = old?.scalar, value.scalar != nil, copied[at.file] == nil {
            let plain = scalar.style == .plain || scalar.style == .any ? scalar.string : nil
            edits[at.file, default: []].append(
                Edit(line: mark.line, column: mark.column, text: Self.inline(value), oldPlain: plain))
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
        copiedFrom[to] = from
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

    /// The text as lines the way libyaml counts them (CR LF, CR, LF, NEL, LS, PS each end one),
    /// each with its own line break, so what is joined back keeps every byte it did not edit.
    static func lines(_ text: String) -> [(content: [Unicode.Scalar], end: [Unicode.Scalar])] {
        var out: [(content: [Unicode.Scalar], end: [Unicode.Scalar])] = []
        var line: [Unicode.Scalar] = []
        var it = Array(text.unicodeScalars)[...]
        while let u = it.popFirst() {
            switch u {
            case "\r":
                if it.first == "\n" {
                    it.removeFirst()
                    out.append((line, ["\r", "\n"]))
                } else {
                    out.append((line, ["\r"]))
                }
                line = []
            case "\n", "\u{85}", "\u{2028}", "\u{2029}":
                out.append((line, [u]))
                line = []
            default:
                line.append(u)
            }
        }
        out.append((line, []))
        return out
    }

    /// `text` with each scalar at (line, column) replaced by its new text: a plain scalar's
    /// extent is its old text exactly, a quoted one's up to its closing quote on the same line.
    /// nil when an edit cannot be placed (a multi-line scalar, text that is not the old value).
    static func apply(_ edits: [Edit], to text: String) -> String? {
        var lines = lines(text)
        for e in edits.sorted(by: { ($0.line, $0.column) > ($1.line, $1.column) }) {
            guard e.line >= 1, e.line - 1 < lines.count else { return nil }
            var line = lines[e.line - 1].content
            let start = e.column - 1
            guard start >= 0, start < line.count else { return nil }
            var end = start
            if let old = e.oldPlain {
                let want = Array(old.unicodeScalars)
                guard !want.isEmpty, start + want.count <= line.count,
                    Array(line[start..<(start + want.count)]) == want
                else { return nil }
                end = start + want.count
            } else if line[start] == "\"" || line[start] == "'" {
                let q = line[start]
                end += 1
                var closed = false
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
                        closed = true
                        break
                    }
                    end += 1
                }
                guard closed else { return nil }
            } else {
                return nil
            }
            line.replaceSubrange(start..<end, with: Array(e.text.unicodeScalars))
            lines[e.line - 1].content = line
        }
        var out = String.UnicodeScalarView()
        for l in lines {
            out.append(contentsOf: l.content)
            out.append(contentsOf: l.end)
        }
        return String(out)
    }

    /// A document's meaning, for comparing what was written with what was meant: scalars by
    /// their text and whether YAML reads them as a number, a boolean, null or a string;
    /// mappings in order; styles, tags and positions left out.
    static func canonical(_ n: Node) -> String {
        switch n {
        case .scalar(let s):
            if s.style == .plain || s.style == .any {
                let p = Node(s.string)
                let kind = p.int != nil ? "i" : p.float != nil ? "f" : p.bool != nil ? "b" : p.null != nil ? "n" : "s"
                return kind + Quote.json(s.string)
            }
            return "s" + Quote.json(s.string)
        case .mapping(let m):
            return "{" + m.map { canonical($0.key) + ":" + canonical($0.value) }.joined(separator: ",") + "}"
        case .sequence(let q):
            return "[" + q.map(canonical).joined(separator: ",") + "]"
        case .alias:
            return "*"
        }
    }

    /// The text a file gets: the in-place edits when they re-parse to exactly what was meant,
    /// else the documents written anew (line breaks as the file had them), checked the same way.
    func newText(_ name: String) throws -> String {
        let meant = files[name]!.map(Self.canonical)
        func means(_ text: String) -> Bool {
            guard let docs = try? Array(Yams.compose_all(yaml: text)) else { return false }
            return docs.map(Self.canonical) == meant
        }
        if let c = copied[name] { return c }
        if !rewritten.contains(name), let text = texts[name], let edited = Self.apply(edits[name] ?? [], to: text),
            means(edited)
        {
            return edited
        }
        var text = try Y.text(files[name]!)
        if let old = texts[name], old.contains("\r\n") { text = text.replacingOccurrences(of: "\n", with: "\r\n") }
        guard means(text) else {
            throw CanaryError.badInput(
                "\(path)/\(name): the change cannot be written so that it reads back as meant; "
                    + "nothing was changed")
        }
        if !rewritten.contains(name) { notes.append("\(name): written anew (an in-place edit would not read back)") }
        return text
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
        // Read back as `status` and the next command will: an edit that means another split
        // (a route stamp only half understands) is refused, not reported done.
        let now = mesh == .argoRollouts ? firstStepWeight : weight
        guard now == percent else {
            throw CanaryError.badInput(
                "\(path): after setting weight \(percent) the split reads as "
                    + "\(now.map { "weight \($0)" } ?? "no weight at all"): its routes are not the two destinations "
                    + "stamp renders (stable and canary); nothing was changed")
        }
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

    /// argo-rollouts: the weight of the Rollout's first step, what the canary gets once it runs
    /// (`weight` is what it gets now: 0 before `start`); nil for the other meshes.
    public var firstStepWeight: Int? { mesh == .argoRollouts ? ArgoRules.plannedWeight(self) : nil }

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
        // Every new text first: nothing is written when one of them cannot be.
        let planned = try plannedTexts()
        var before: [String: String?] = [:]
        for (name, text) in planned {
            before[name] = texts[name]
            try Self.write(path + "/" + name, text, mode: modes[name] ?? modes[copiedFrom[name] ?? ""])
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
        return Saved(changed: changed, problems: problems, notes: notes + self.notes)
    }

    /// What `save` would write, file by file, and nothing written: each text the in-place edit
    /// or the file written anew, re-parsed and compared with what was meant (a dry run).
    public func plannedTexts() throws -> [(name: String, text: String)] {
        try Set(edits.keys).union(rewritten).union(copied.keys).sorted().map { ($0, try newText($0)) }
    }

    static func write(_ path: String, _ text: String, mode: mode_t? = nil) throws {
        let f = try WritableFile.temporary(beside: path)
        try f.write(Array(text.utf8))
        if let mode { _ = chmod(f.path, mode) }
        try f.commit(to: path)
    }

    /// The file that says a folder is stamp's, and which files stamp wrote in it.
    public static let marker = ".stamp-canary.json"

    /// Renders `spec` into `path`: a new or empty folder, or one stamp rendered (its marker lists
    /// the files stamp wrote). Only those files are replaced or removed; kustomization.yaml keeps
    /// everything of a user's (patches, images, generators, resources of their own) but the
    /// resource list of stamp's files and the namespace. Checked before anything is written.
    public static func render(_ spec: CanarySpec, into path: String, allowTag: Bool) throws -> [String] {
        if Path.exists(path) && !Path.isDirectory(path) {
            throw CanaryError.usage("--output \(path): exists and is not a folder")
        }
        let existing = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter {
            $0 != ".stamp-canary.lock"
        }
        var ours: Set<String> = []
        if !existing.isEmpty {
            guard let data = FileManager.default.contents(atPath: path + "/" + marker),
                let j = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let files = j["files"] as? [String]
            else {
                throw CanaryError.usage(
                    "--output \(path): a folder stamp did not render (no \(marker)); give a new or empty folder "
                        + "(your own Kustomize folder can list it as a resource)")
            }
            ours = Set(files).intersection(CanarySpec.fileNames)
        }
        // The resources a user added to kustomization.yaml stay listed, after stamp's.
        let oldKustomization =
            (try? String(contentsOfFile: path + "/kustomization.yaml", encoding: .utf8)).flatMap {
                try? Yams.compose(yaml: $0)
            }
        let before = oldKustomization?["resources"]?.items.compactMap(\.text) ?? []
        var files = try spec.render(keeping: before.filter { !ours.contains($0) && !CanarySpec.fileNames.contains($0) })
        for (name, _) in files where name != "kustomization.yaml" && existing.contains(name) && !ours.contains(name) {
            throw CanaryError.usage(
                "--output \(path): \(name) is not stamp's (not in \(marker)); nothing was written")
        }
        if var k = oldKustomization, case .mapping = k, let fresh = files.first?.docs.first {
            // A user's kustomization.yaml: only the keys stamp owns change.
            for key in ["resources", "namespace"] { k[key] = fresh[key] }
            files[0] = ("kustomization.yaml", [k])
        }
        let stale = ours.subtracting(files.map(\.name))
        let staging = try Path.makeTemporaryDirectory(beside: path.hasSuffix("/") ? String(path.dropLast()) : path)
        defer {
            removeTree(staging)
            TemporaryFolders.done(staging)
        }
        for (name, docs) in files { try write(staging + "/" + name, try Y.text(docs)) }
        // stamp's own files (the resources a user listed are not in the staging folder).
        let problems = try CanaryFolder(path: staging).check(allowTag: allowTag, build: false).problems
        guard problems.isEmpty else {
            throw CanaryError.badInput(
                "the rendered folder would not be a safe canary: " + problems.joined(separator: "; "))
        }
        let names = files.map(\.name)
        let markerJSON = try JSONSerialization.data(
            withJSONObject: [
                "renderedBy": "stamp canary render", "files": names.filter { $0 != "kustomization.yaml" },
            ],
            options: [.sortedKeys, .prettyPrinted])
        try write(staging + "/" + marker, String(decoding: markerJSON, as: UTF8.self) + "\n")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for name in names + [marker] {
            guard rename(staging + "/" + name, path + "/" + name) == 0 else {
                throw CanaryError(kind: .io, message: "\(path)/\(name): \(String(cString: strerror(errno)))")
            }
        }
        for name in stale { try? FileManager.default.removeItem(atPath: path + "/" + name) }
        return names
    }
}
