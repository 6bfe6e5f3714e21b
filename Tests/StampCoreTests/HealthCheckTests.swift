import Foundation
import Testing
import TestSupport
import Hashing
import IO
import Layers
import OCI
import Templates
@testable import StampCore

/// HTTP servers on 127.0.0.1 for the probes: one answering 200, one 500, one that never answers,
/// and a port nobody listens on. Started once for all tests.
final class ProbeServers: @unchecked Sendable {
    static let shared = ProbeServers()
    let up: Int, error: Int, hang: Int, refused: Int
    private var processes: [Process] = []

    private init() {
        let script = """
            import http.server, os, socketserver, sys, threading, time
            mode = sys.argv[1]
            parent = os.getppid()
            def orphaned():
                while os.getppid() == parent:
                    time.sleep(0.5)
                os._exit(0)
            threading.Thread(target=orphaned, daemon=True).start()
            class H(http.server.BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.1"
                def do_GET(self):
                    if mode == "hang":
                        time.sleep(3600)
                    code = 200 if mode == "up" and self.path == "/api/ping" else 500
                    body = b'{"online":true}' if code == 200 else b'boom'
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)
                def log_message(self, *a): pass
            class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
                daemon_threads = True
            s = S(("127.0.0.1", 0), H)
            print(s.server_address[1], flush=True)
            s.serve_forever()
            """
        let path = testRoot + "/probe-server.py"
        try! Data(script.utf8).write(to: URL(fileURLWithPath: path))
        var ports: [Int] = []
        for mode in ["up", "error", "hang"] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", path, mode]
            let pipe = Pipe()
            p.standardOutput = pipe
            try! p.run()
            processes.append(p)
            var line = Data()
            while !line.contains(10) { line.append(pipe.fileHandleForReading.availableData) }
            ports.append(Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))!)
        }
        (up, error, hang) = (ports[0], ports[1], ports[2])
        // A port that was free a moment ago: bind, read the port, close.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        refused = Int(UInt16(bigEndian: addr.sin_port))
        close(fd)
        atexit { ProbeServers.shared.processes.forEach { $0.terminate() } }
    }
}

/// A stamped image, its health-check script and version.json taken out of the stamp layer.
struct StampedScript {
    let dir: String
    let script: String
    let versionJSON: String
    let version: String

    init(version: String = "v2.1-canary") throws {
        dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        var s = settings(dir + "/b.tar", "oci-archive:\(dir)/o.tar", version: version)
        s.platforms = ["linux/amd64"]
        _ = try build(s)
        let img = try ImageReader.open(.ociArchive(path: dir + "/o.tar", ref: nil))
        let files = try StampReader.files(in: img.images[0].layers.last!, store: img.store)
        let sh = try #require(files["app/health-check-enhanced.sh"])
        #expect(sh.mode == 0o755)
        script = dir + "/health-check-enhanced.sh"
        versionJSON = dir + "/version.json"
        try Data(sh.bytes).write(to: URL(fileURLWithPath: script))
        try Data(try #require(files["app/version.json"]).bytes).write(to: URL(fileURLWithPath: versionJSON))
        self.version = version
    }
}

/// PATH folders offering exactly one HTTP client and the few tools the script uses.
enum ClientPath: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case curl, busyboxWget = "busybox-wget", node

    var testDescription: String { rawValue }

    func folder(_ base: String) throws -> String {
        let d = base + "/path-" + rawValue
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        let tools = ["sed", "tr", "cut", "head", "tail", "date", "sleep", "grep"]
        for t in tools {
            let target = self == .busyboxWget ? "/usr/bin/busybox" : try which(t)
            try FileManager.default.createSymbolicLink(atPath: d + "/" + t, withDestinationPath: target)
        }
        switch self {
        case .curl:
            try FileManager.default.createSymbolicLink(atPath: d + "/curl", withDestinationPath: try which("curl"))
        case .busyboxWget:
            try FileManager.default.createSymbolicLink(atPath: d + "/wget", withDestinationPath: "/usr/bin/busybox")
        case .node:
            try FileManager.default.createSymbolicLink(atPath: d + "/node", withDestinationPath: try which("node"))
        }
        return d
    }

    func which(_ tool: String) throws -> String {
        for d in ["/usr/local/bin", "/usr/bin", "/bin"]
        where FileManager.default.isExecutableFile(atPath: d + "/" + tool) { return d + "/" + tool }
        throw StampError.badInput("\(tool) is not installed")
    }
}

enum Shell: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case dash, bash, busybox
    var testDescription: String { self == .busybox ? "busybox sh" : rawValue }
    func command(_ script: String) -> [String] {
        switch self {
        case .dash: return ["/usr/bin/dash", script]
        case .bash: return ["/usr/bin/bash", script]
        case .busybox: return ["/usr/bin/busybox", "sh", script]
        }
    }
}

@Suite struct HealthCheckTests {
    struct Probe {
        var status: Int32
        var json: JSONValue
        var seconds: Double
    }

    func probe(
        _ s: StampedScript, shell: Shell, client: ClientPath, port: Int, timeout: Int = 5,
        extraEnv: [String: String] = [:]
    ) throws -> Probe {
        let path = try client.folder(s.dir + "/" + UUID().uuidString)
        var env = [
            "PATH": path, "STAMP_VERSION_JSON": s.versionJSON, "SERVER_PORT": String(port),
            "STAMP_HEALTH_TIMEOUT": String(timeout),
        ]
        for (k, v) in extraEnv { env[k] = v }
        let start = Date()
        let r = try run(
            ["env", "-i"] + env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } + shell.command(s.script))
        let seconds = Date().timeIntervalSince(start)
        let lines = r.out.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2 && lines[1].isEmpty, "stdout must be one line: \(r.out)")
        #expect(r.out.utf8.count < 4096)
        #expect(r.err.isEmpty, "stderr: \(r.err)")
        return Probe(status: r.status, json: try JSONValue.parse(String(lines[0])), seconds: seconds)
    }

    func expectIdentity(_ j: JSONValue, _ s: StampedScript) {
        #expect(j["version"]?.stringValue == s.version)
        #expect(j["releaseId"]?.stringValue == "0123456789abcdef0123456789abcdef01234567")
        #expect(j["buildTime"]?.stringValue == "2025-04-05T00:00:00Z")
        #expect(j["serviceId"]?.stringValue == "anything-llm")
        let check = j["checks"]?["app:ping"]?.arrayValue?.first
        #expect(check?["observedUnit"]?.stringValue == "ms")
        #expect(check?["observedValue"]?.int64Value != nil)
        #expect(Timestamp.parse(check?["time"]?.stringValue ?? "") != nil)
    }

    @Test(arguments: Shell.allCases, ClientPath.allCases)
    func probesUnderEveryShellAndClient(_ shell: Shell, _ client: ClientPath) throws {
        let servers = ProbeServers.shared
        let s = try StampedScript()

        let up = try probe(s, shell: shell, client: client, port: servers.up)
        #expect(up.status == 0)
        #expect(up.json["status"]?.stringValue == "pass")
        #expect(up.json["checks"]?["app:ping"]?.arrayValue?.first?["httpStatus"]?.int64Value == 200)
        #expect(up.json["output"] == nil)
        expectIdentity(up.json, s)

        let err = try probe(s, shell: shell, client: client, port: servers.error)
        #expect(err.status == 1)
        #expect(err.json["status"]?.stringValue == "fail")
        #expect(err.json["checks"]?["app:ping"]?.arrayValue?.first?["httpStatus"]?.int64Value == 500)
        #expect(err.json["output"]?.stringValue?.contains("500") == true)
        expectIdentity(err.json, s)

        let refused = try probe(s, shell: shell, client: client, port: servers.refused)
        #expect(refused.status == 1)
        #expect(refused.json["status"]?.stringValue == "fail")
        #expect(refused.json["checks"]?["app:ping"]?.arrayValue?.first?["httpStatus"] == .null)
        #expect(refused.json["output"]?.stringValue?.isEmpty == false)
        expectIdentity(refused.json, s)

        let hang = try probe(s, shell: shell, client: client, port: servers.hang, timeout: 1)
        #expect(hang.status == 1)
        #expect(hang.json["status"]?.stringValue == "fail")
        #expect(hang.seconds < 3.5, "a hung app must fail within the timeout (took \(hang.seconds)s)")
        expectIdentity(hang.json, s)
    }

    @Test func shellcheckIsClean() throws {
        let s = try StampedScript()
        let r = try run(["shellcheck", "-s", "sh", s.script])
        #expect(r.status == 0, "\(r.out)")
        let printed = try stamp(["healthcheck"])
        #expect(printed.out == (try String(contentsOfFile: s.script, encoding: .utf8)))
        let generic = try stamp([
            "healthcheck", "--profile", "generic", "--health-port", "8080", "--health-path", "/healthz",
        ])
        #expect(generic.status == 0)
        #expect(generic.out.contains("default_port='8080'") && generic.out.contains("ping_path='/healthz'"))
    }

    /// The version is data: reported literally, never run.
    @Test func hostileVersionIsReportedLiterally() throws {
        let marker = testRoot + "/pwned-" + UUID().uuidString
        let hostile = "1.0\"; touch \(marker); \"$(touch \(marker))`touch \(marker)`'\\"
        let s = try StampedScript(version: hostile)
        for shell in Shell.allCases {
            let up = try probe(s, shell: shell, client: .curl, port: ProbeServers.shared.up)
            #expect(up.status == 0)
            #expect(up.json["version"]?.stringValue == hostile)
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test func portFromTheAppsDotEnv() throws {
        let s = try StampedScript()
        let env = s.dir + "/.env"
        try Data("# app config\nexport SERVER_PORT=\"\(ProbeServers.shared.up)\"\nOTHER=1\n".utf8).write(
            to: URL(fileURLWithPath: env))
        let script = HealthCheckScript(
            versionJSON: s.versionJSON, envFile: env, port: ProbeServers.shared.refused, path: "/api/ping",
            timeout: 2, serviceID: nil, stampVersion: "test"
        ).render()
        let path = s.dir + "/dotenv.sh"
        try Data(script.utf8).write(to: URL(fileURLWithPath: path))
        let r = try run(["env", "-u", "SERVER_PORT", "/usr/bin/dash", path])
        #expect(r.status == 0, "\(r.out)")
        #expect(
            try JSONValue.parse(r.out.trimmingCharacters(in: .whitespacesAndNewlines))["status"]?.stringValue == "pass")
        // SERVER_PORT in the environment wins over .env.
        let r2 = try run(["env", "SERVER_PORT=\(ProbeServers.shared.error)", "/usr/bin/dash", path])
        #expect(r2.status == 1)
        // STAMP_HEALTH_URL wins over both.
        let r3 = try run([
            "env", "SERVER_PORT=\(ProbeServers.shared.error)",
            "STAMP_HEALTH_URL=http://127.0.0.1:\(ProbeServers.shared.up)/api/ping", "/usr/bin/dash", path,
        ])
        #expect(r3.status == 0)
    }

    @Test func configHealthcheckPointsAtTheScript() throws {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        var s = settings(dir + "/b.tar", "oci-archive:\(dir)/o.tar")
        s.healthInterval = "1m30s"
        s.healthRetries = 5
        let r = try build(s)
        #expect(r.layer?.files.contains("app/health-check-enhanced.sh") == true)
        #expect(r.layer?.files.contains("app/server/public/version.json") == true)
        let cfg = try jsonOf(try run(["skopeo", "inspect", "--config", "--raw", "oci-archive:\(dir)/o.tar"]).out)
        #expect(
            JSONValue.encodeString(cfg["config"]!["Healthcheck"]!)
                == #"{"Interval":90000000000,"Retries":5,"StartPeriod":60000000000,"Test":["CMD","/app/health-check-enhanced.sh"],"Timeout":10000000000}"#
        )
        let img = try ImageReader.open(.ociArchive(path: dir + "/o.tar", ref: nil))
        let files = try StampReader.files(in: img.images[0].layers.last!, store: img.store)
        #expect(files["app/server/public/version.json"]?.bytes == files["app/version.json"]?.bytes)
        #expect(Verifier.verify(.ociArchive(path: dir + "/o.tar", ref: nil)).findings.isEmpty)

        // --no-healthcheck keeps the base's; --no-public-version publishes nothing.
        var off = settings(dir + "/b.tar", "oci-archive:\(dir)/off.tar")
        off.noHealthcheck = true
        off.noPublicVersion = true
        let o = try build(off)
        #expect(o.layer?.files == ["app/version.json", "app/version.txt"])
        let offImg = try ImageReader.open(.ociArchive(path: dir + "/off.tar", ref: nil))
        let baseImg = try ImageReader.open(.ociArchive(path: dir + "/b.tar", ref: nil))
        #expect(offImg.images[0].config["config"]!["Healthcheck"] == baseImg.images[0].config["config"]!["Healthcheck"])
        #expect(Verifier.verify(.ociArchive(path: dir + "/off.tar", ref: nil)).findings.isEmpty)
    }

    @Test(arguments: [
        (["usr/bin/curl"], "no curl, wget or node on PATH"),
        (["bin/sh"], "no /bin/sh"),
    ])
    func preflightNeedsAShellAndAClient(_ omit: [String], _ message: String) throws {
        let dir = try tempDir()
        var o = SampleImage.Options()
        o.omit = Set(omit)
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive, options: o)
        let r = try stamp(["build", "--base", dir + "/b.tar", "--version", "v1", "--output", dir + "/o.tar"])
        #expect(r.status == 2)
        #expect(r.err.contains(message) && r.err.contains("linux/amd64"), "\(r.err)")
        // The base's layers were being copied into a temp file beside o.tar: it is gone too.
        #expect(listing(dir) == ["b.tar"], "\(listing(dir))")
        let allowed = try stamp([
            "build", "--base", dir + "/b.tar", "--version", "v1", "--output", dir + "/o.tar", "--allow-missing-client",
        ])
        #expect(allowed.status == 0, "\(allowed.err)")
        #expect(allowed.err.contains("warning:") && allowed.err.contains(message))
    }

    @Test func verifyChecksTheScriptAndHealthcheck() throws {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/b.tar", format: .ociArchive)
        var s = settings(dir + "/b.tar", "oci:\(dir)/out")
        s.platforms = ["linux/amd64"]
        _ = try build(s)
        try editLayout(
            dir + "/out",
            config: { c in
                var inner = c["config"]!
                var hc = inner["Healthcheck"]!
                hc["Test"] = .array([.string("CMD-SHELL"), .string("curl -f http://localhost:3001/api/ping")])
                inner["Healthcheck"] = hc
                c["config"] = inner
            })
        let r = try stamp(["verify", "oci:\(dir)/out"])
        #expect(r.status == 1)
        #expect(
            r.out.contains(
                "Healthcheck runs [\"CMD-SHELL\",\"curl -f http://localhost:3001/api/ping\"], not "
                    + "/app/health-check-enhanced.sh"
            ), "\(r.out)")
    }
}

@Suite struct MergedViewTests {
    /// Layers as (path, kind) lists in a layout folder, returned as descriptors and a store.
    func layers(_ specs: [[(String, TarWriter.Kind)]]) throws -> ([Descriptor], BlobStore) {
        let dir = try tempDir()
        try FileManager.default.createDirectory(atPath: dir + "/blobs/sha256", withIntermediateDirectories: true)
        var descs: [Descriptor] = []
        for spec in specs {
            let tar = MemorySink()
            let tw = TarWriter(sink: tar, mtime: 0)
            for (p, k) in spec {
                if case .file = k {
                    try tw.addFile(p, Array("x".utf8))
                } else {
                    try tw.begin(.init(path: p, kind: k, mode: 0o755))
                }
            }
            try tw.finish()
            let d = Digester.digest(tar.bytes)
            try Data(tar.bytes).write(to: URL(fileURLWithPath: dir + "/blobs/sha256/" + Digest.hex(d)))
            descs.append(Descriptor(mediaType: MediaType.ociLayer, digest: d, size: Int64(tar.bytes.count)))
        }
        return (descs, DirectoryBlobStore(root: dir, name: "test"))
    }

    @Test func whiteoutsOpaqueFoldersAndSymlinks() throws {
        let (descs, store) = try layers([
            [
                ("usr/bin/dash", .file), ("bin", .symlink("usr/bin")), ("usr/bin/sh", .symlink("dash")),
                ("etc/a", .file),
                ("etc/b", .file), ("opt/cache/x", .file), ("opt/cache/y", .file),
            ],
            [
                ("etc/.wh.a", .file), ("opt/cache/.wh..wh..opq", .file), ("opt/cache/z", .file),
                ("usr/local/bin/node", .file),
            ],
            [("usr/local/bin/.wh.node", .file)],
        ])
        let v = try MergedView.build(layers: descs, store: store)
        #expect(v.isFile("/bin/sh"))  // through bin -> usr/bin and sh -> dash
        #expect(v.lookup("bin/sh")?.path == "usr/bin/dash")
        #expect(!v.isFile("etc/a") && v.isFile("etc/b"))
        #expect(!v.isFile("opt/cache/x") && !v.isFile("opt/cache/y") && v.isFile("opt/cache/z"))
        #expect(!v.isFile("usr/local/bin/node"))
        #expect(v.which(["curl", "wget", "node", "dash"], searchPath: ["/usr/local/bin", "/bin"]) == "/bin/dash")
    }
}
