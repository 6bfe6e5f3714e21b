import Foundation
import Testing
import TestSupport
import Yams

/// Issue 27: the canary folder commands under hostile or unusual folders. A command that exits 0
/// has done what it says (the file reads back as meant), or it exits non-zero and changes nothing.
@Suite("Canary folders under hostile input (issue 27)")
struct CanaryHardeningTests {
    func folder(_ mesh: String = "istio") throws -> String {
        let dir = try tempDir() + "/deploy"
        let r = try stamp([
            "canary", "render", "--stable", "reg.corp/ai/llm@sha256:" + String(repeating: "a", count: 64),
            "--stable-version", "v2.0", "--canary", "reg.corp/ai/llm@sha256:" + String(repeating: "b", count: 64),
            "--canary-version", "v2.1", "--host", "ai.corp.local", "--mesh", mesh, "--gateway",
            mesh == "gateway-api" ? "infra/public" : "istio-system/public", "--canary-storage", "fresh",
            "--output", dir,
        ])
        try #require(r.status == 0, "\(r.err)")
        return dir
    }

    func text(_ dir: String, _ file: String) throws -> String {
        try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
    }

    /// The split's weights as YAML reads them.
    func splitWeights(_ dir: String) throws -> [Int] {
        let vs = try #require(try Yams.compose(yaml: try text(dir, "virtualservice.yaml")))
        return (vs["spec"]?["http"]?.sequence?.last?["route"]?.sequence ?? []).compactMap { $0["weight"]?.int }
    }

    /// Point 1: a Windows checkout (CRLF). Every command changes what it says, and CRLF stays.
    @Test func crlfFilesAreEditedAndKeepTheirLineBreaks() throws {
        let dir = try folder()
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name.hasSuffix(".yaml") {
            let t = try text(dir, name).replacingOccurrences(of: "\n", with: "\r\n")
            try t.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
        }
        let w = try stamp(["canary", "weight", "30", dir])
        #expect(w.status == 0 && w.out.contains("changed virtualservice.yaml"), "\(w.out)\(w.err)")
        #expect(try splitWeights(dir) == [70, 30])
        let p = try stamp(["canary", "promote", dir])
        #expect(p.status == 0, "\(p.err)")
        #expect(try text(dir, "deployment-stable.yaml").contains(String(repeating: "b", count: 64)))
        #expect(try stamp(["canary", "weight", "20", dir]).status == 0)
        let rb = try stamp(["canary", "rollback", dir])
        #expect(rb.status == 0, "\(rb.err)")
        #expect(try splitWeights(dir) == [100, 0])
        for name in ["virtualservice.yaml", "deployment-stable.yaml"] {
            let bytes = Array(try text(dir, name).utf8)
            let bare = bytes.indices.filter { bytes[$0] == 10 && ($0 == 0 || bytes[$0 - 1] != 13) }
            #expect(bare.isEmpty, "\(name) has LF without CR")
        }
    }

    /// Point 2: a flow-style route is edited where it stands; an anchored weight shared by an
    /// alias cannot be edited in place without changing the alias too, so the file is written
    /// anew (said), reading back as meant.
    @Test func flowStyleAndAnchorsReadBackAsMeant() throws {
        let dir = try folder()
        var vs = try text(dir, "virtualservice.yaml")
        let split = try #require(vs.range(of: "  - name: split\n"))
        vs =
            String(vs[..<split.lowerBound])
            + "  - name: split\n    route: [{destination: {host: anything-llm, subset: stable}, weight: 95},"
            + " {destination: {host: anything-llm, subset: canary}, weight: 5}]  # flow\n"
        try vs.write(toFile: dir + "/virtualservice.yaml", atomically: true, encoding: .utf8)
        let w = try stamp(["canary", "weight", "25", dir])
        #expect(w.status == 0, "\(w.err)")
        #expect(try splitWeights(dir) == [75, 25])
        #expect(try text(dir, "virtualservice.yaml").contains("weight: 25}]  # flow\n"))

        let dir2 = try folder()
        var anchored = try text(dir2, "virtualservice.yaml")
        // The split's canary weight is an alias of a label's anchored value.
        anchored = anchored.replacingOccurrences(
            of: "  labels:\n    app: anything-llm\n", with: "  labels:\n    app: anything-llm\n    share: &w 5\n")
        let canaryWeight = try #require(anchored.range(of: "      weight: 5\n", options: .backwards))
        anchored.replaceSubrange(canaryWeight, with: "      weight: *w\n")
        try anchored.write(toFile: dir2 + "/virtualservice.yaml", atomically: true, encoding: .utf8)
        let a = try stamp(["canary", "weight", "40", dir2])
        #expect(a.status == 0, "\(a.err)")
        #expect(a.err.contains("written anew"), "\(a.err)")
        #expect(try splitWeights(dir2) == [60, 40])
        let back = try #require(try Yams.compose(yaml: try text(dir2, "virtualservice.yaml")))
        #expect(back["metadata"]?["labels"]?["share"]?.int == 5)
    }

    /// Found by stamp-fuzz's canary target: on a split whose canary destination stamp cannot read
    /// (a mangled key), `CanaryFolder.setWeight` took the edit, and the folder then read as no
    /// weight at all (the CLI's check refused the result, with reasons about hosts and sums).
    /// The edit itself is now read back: refused with what it means, the file unchanged.
    @Test func aWeightThatDoesNotReadBackIsRefused() throws {
        let dir = try folder()
        var vs = try text(dir, "virtualservice.yaml")
        let last = try #require(vs.range(of: "    - destination:\n", options: .backwards))
        vs.replaceSubrange(last, with: "    - destinstinstination:\n")
        try vs.write(toFile: dir + "/virtualservice.yaml", atomically: true, encoding: .utf8)
        let w = try stamp(["canary", "weight", "37", dir])
        #expect(w.status != 0, "\(w.out)")
        #expect(w.err.contains("nothing was changed") && w.err.split(separator: "\n").count == 1, "\(w.err)")
        #expect(try text(dir, "virtualservice.yaml") == vs)
    }

    /// Point 3: two commands on one folder run one after the other (a lock in the folder).
    @Test func aSecondCommandWaitsForTheFirst() throws {
        let dir = try folder()
        let holder = try Background(
            ["flock", dir + "/.stamp-canary.lock", "sleep", "3"], log: try tempDir() + "/flock.log")
        usleep(300_000)
        let start = Date()
        let w = try stamp(["canary", "weight", "30", dir])
        let waited = Date().timeIntervalSince(start)
        _ = holder
        #expect(w.status == 0, "\(w.err)")
        #expect(waited > 2, "weight did not wait for the folder's lock (\(waited) s)")
        #expect(try splitWeights(dir) == [70, 30])
    }

    /// Point 4: no split at all is not a safe canary, nor is an empty folder.
    @Test func noSplitIsNotASafeCanary() throws {
        let empty = try tempDir()
        let c = try stamp(["canary", "check", empty])
        #expect(c.status == 1 && c.out.contains("no traffic split"), "\(c.out)")
        let dir = try folder()
        try FileManager.default.removeItem(atPath: dir + "/virtualservice.yaml")
        try String(try text(dir, "kustomization.yaml")).replacingOccurrences(of: "- virtualservice.yaml\n", with: "")
            .write(toFile: dir + "/kustomization.yaml", atomically: true, encoding: .utf8)
        let c2 = try stamp(["canary", "check", dir])
        #expect(c2.status == 1 && c2.out.contains("no traffic split"), "\(c2.out)")
    }

    /// Points 7, 9, 10, 11: only regular files inside the folder, bounded; nothing of the
    /// environment printed; modes kept; a bounded, escaped error line; never a hang.
    @Test func onlyBoundedRegularFilesAreRead() throws {
        let secret = "s3cr3t-\(UUID().uuidString)"
        func refused(_ dir: String, _ what: String) throws {
            let start = Date()
            let r = try stamp(["canary", "weight", "10", dir], env: ["GITHUB_TOKEN": secret])
            #expect(Date().timeIntervalSince(start) < 30, "\(what): took too long")
            #expect(r.status != 0 && r.status != 70, "\(what): \(r.status) \(r.err)")
            #expect(!r.out.contains(secret) && !r.err.contains(secret), "\(what): the environment was printed")
            #expect(r.err.split(separator: "\n").count == 1 && r.err.count < 600, "\(what): \(r.err.prefix(800))")
        }
        let link = try folder()
        #expect(symlink("/proc/self/environ", link + "/environ.yaml") == 0)
        try refused(link, "a symlink")
        let fifo = try folder()
        #expect(mkfifo(fifo + "/pipe.yaml", 0o644) == 0)
        try refused(fifo, "a FIFO")
        let big = try folder()
        try String(repeating: "# padding line\n", count: 400_000).write(
            toFile: big + "/big.yaml", atomically: true, encoding: .utf8)
        try refused(big, "a 6 MB file")
        let bomb = try folder()
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1..<9 {
            yaml += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        try yaml.write(toFile: bomb + "/bomb.yaml", atomically: true, encoding: .utf8)
        try refused(bomb, "an alias bomb")
        let bad = try folder()
        try "key: [unclosed \u{1b}[31m\n".write(toFile: bad + "/bad.yaml", atomically: true, encoding: .utf8)
        let r = try stamp(["canary", "weight", "10", bad])
        #expect(r.status != 0 && !r.err.contains("\u{1b}"), "\(r.err)")
        // A file's mode is kept when it is replaced.
        let dir = try folder()
        #expect(chmod(dir + "/virtualservice.yaml", 0o600) == 0)
        #expect(try stamp(["canary", "weight", "10", dir]).status == 0)
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/virtualservice.yaml")[.posixPermissions]
        #expect((mode as? NSNumber)?.intValue == 0o600)
    }

    /// Point 9: render writes only into a new or empty folder or one it rendered (its marker);
    /// a user's files are never overwritten or removed; their kustomization.yaml keeps its
    /// patches, images and generators.
    @Test func renderNeverTakesAUsersFiles() throws {
        let mine = try tempDir() + "/mine"
        try FileManager.default.createDirectory(atPath: mine, withIntermediateDirectories: true)
        let service = "apiVersion: v1\nkind: Service\nmetadata:\n  name: mine\n"
        try service.write(toFile: mine + "/service.yaml", atomically: true, encoding: .utf8)
        let args = [
            "canary", "render", "--stable", "reg.corp/ai/llm@sha256:" + String(repeating: "a", count: 64),
            "--stable-version", "v2.0", "--canary", "reg.corp/ai/llm@sha256:" + String(repeating: "b", count: 64),
            "--canary-version", "v2.1", "--host", "ai.corp.local", "--gateway", "istio-system/public",
            "--canary-storage", "fresh",
        ]
        let r = try stamp(args + ["--output", mine])
        #expect(r.status == 2 && r.err.contains("a folder stamp did not render"), "\(r.err)")
        #expect(try text(mine, "service.yaml") == service)
        #expect(try FileManager.default.contentsOfDirectory(atPath: mine) == ["service.yaml"])

        let dir = try folder()
        var k = try text(dir, "kustomization.yaml")
        k += "images:\n- name: busybox\n  newTag: \"1.36\"\nconfigMapGenerator:\n- name: extra\n  literals:\n  - a=1\n"
        k += "patches:\n- path: limits.yaml\n"
        try k.write(toFile: dir + "/kustomization.yaml", atomically: true, encoding: .utf8)
        let limits =
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: anything-llm-canary\nspec:\n  replicas: 1\n"
        try limits.write(toFile: dir + "/limits.yaml", atomically: true, encoding: .utf8)
        let again = try stamp(
            args.map { $0 == "v2.1" ? "v2.2" : $0 } + [
                "--mesh", "gateway-api", "--gateway", "infra/public", "--output", dir,
            ])
        #expect(again.status == 0, "\(again.err)")
        let kk = try #require(try Yams.compose(yaml: try text(dir, "kustomization.yaml")))
        #expect(kk["images"]?[0]?["name"]?.string == "busybox" && kk["configMapGenerator"] != nil)
        #expect(kk["patches"]?[0]?["path"]?.string == "limits.yaml")
        #expect(try text(dir, "limits.yaml") == limits)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(!names.contains("virtualservice.yaml") && names.contains("httproute.yaml"))
        #expect(!names.contains { $0.contains("stamp-render") || $0.hasSuffix(".tmp") }, "\(names)")
        #expect(try run(["kubectl", "kustomize", dir]).status == 0)
    }

    /// Point 13: what the API server refuses is refused at render (one line, nothing written),
    /// and so is a record that contradicts itself.
    @Test func valuesKubernetesRefusesAndSelfContradictoryRecords() throws {
        let root = try tempDir()
        let a = "reg.corp/ai/llm@sha256:" + String(repeating: "a", count: 64)
        let args = [
            "canary", "render", "--stable", a, "--stable-version", "v2.0", "--host", "ai.corp.local", "--gateway",
            "istio-system/public", "--canary-storage", "fresh",
        ]
        let b = "reg.corp/ai/llm@sha256:" + String(repeating: "b", count: 64)
        for (extra, text) in [
            (["--storage-size", "ten gigs"], "--storage-size"), (["--storage-class", "Fast_SSD"], "--storage-class"),
        ] {
            let out = root + "/\(UUID().uuidString)"
            let r = try stamp(args + ["--canary", b, "--canary-version", "v2.1", "--output", out] + extra)
            #expect(r.status == 2 && r.err.contains(text), "\(extra): \(r.err)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
        let record = root + "/canary.lock.json"
        try """
        {"lockVersion": 1, "base": {"reference": "x", "digest": "sha256:\(String(repeating: "c", count: 64))"},
         "output": {"reference": "docker://\(b)", "digest": "sha256:\(String(repeating: "d", count: 64))",
                    "version": "v2.1"}}
        """.write(toFile: record, atomically: true, encoding: .utf8)
        let r = try stamp(args + ["--canary", record, "--output", root + "/x"])
        #expect(r.status == 2 && r.err.contains("contradicts itself"), "\(r.err)")
    }

    /// Points 10 and 11: a FIFO given as a record or as stamp.yaml is refused at once, numbers
    /// at the edge of what flags take are refused (never a crash), and an error line quoting
    /// input is one escaped, bounded line.
    @Test func fifosEdgeNumbersAndHostileTextInErrors() throws {
        let root = try tempDir()
        #expect(mkfifo(root + "/record.json", 0o644) == 0)
        let start = Date()
        let r = try stamp([
            "canary", "render", "--stable", root + "/record.json", "--canary", root + "/record.json", "--host",
            "ai.corp.local", "--canary-storage", "fresh", "--output", root + "/out",
        ])
        #expect(r.status == 2 && r.err.contains("not a regular file"), "\(r.err)")
        #expect(mkfifo(root + "/stamp.yaml", 0o644) == 0)
        let b = try stamp(["build", "--config", root + "/stamp.yaml"])
        #expect(b.status != 0 && b.status != 70, "\(b.err)")
        #expect(Date().timeIntervalSince(start) < 20, "a FIFO blocked")
        let big = try stamp([
            "canary", "status", "--url", "http://127.0.0.1:9", "--canary-version", "v2", "--requests",
            "9223372036854775807", "--header-requests", "1",
        ])
        #expect(big.status == 2, "\(big.err)")
        let watch = try stamp([
            "canary", "analyze", "--prometheus", "http://127.0.0.1:9", "--stable", "a", "--canary", "b", "--watch",
            "9223372036854775807",
        ])
        #expect(watch.status == 2, "\(watch.err)")
        let hostile = "x\u{1b}[2J\nstamp: ok: fake line\u{0}" + String(repeating: "y", count: 100_000)
        let e = try stamp([
            "canary", "render", "--stable", "reg.corp/ai/llm@sha256:" + String(repeating: "a", count: 64),
            "--stable-version", "v2.0", "--canary", "reg.corp/ai/llm@sha256:" + String(repeating: "b", count: 64),
            "--canary-version", "v2.1", "--canary-storage", "fresh", "--gateway", "mesh", "--host", hostile,
            "--output", root + "/o",
        ])
        #expect(e.status == 2 && e.err.contains("--host") && e.err.contains("\\n"), "\(e.err.prefix(300))")
        #expect(!e.err.contains("\u{1b}") && !e.err.contains("\u{0}"), "\(e.err.prefix(300))")
        #expect(e.err.split(separator: "\n").count == 1 && e.err.count < 3000, "\(e.err.count)")
    }
}
