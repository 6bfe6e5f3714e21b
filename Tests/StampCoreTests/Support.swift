import Foundation
import Testing
import TestSupport
import Hashing
import IO
import Layers
import OCI
import Synchronization
@testable import StampCore

struct RunResult {
    var status: Int32
    var out: String
    var err: String
}

/// Starts a program found on PATH (or by path) with posix_spawn, a clean signal mask and default
/// handlers: the test runner's threads block most signals (SIGCHLD included), and a shell that
/// inherits that mask never sees its children exit. Output goes to the given files.
func spawn(_ args: [String], env: [String: String] = [:], stdout: String = "/dev/null", stderr: String = "/dev/null")
    throws -> pid_t
{
    var e = ProcessInfo.processInfo.environment
    // stamp's progress lines (plain, stderr being a file) would hide the one error line the
    // tests look for; a test about progress sets STAMP_PROGRESS or --progress itself.
    e["STAMP_PROGRESS"] = "quiet"
    for (k, v) in env { e[k] = v }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var none = sigset_t(), all = sigset_t()
    sigemptyset(&none)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attr, &none)
    posix_spawnattr_setsigdefault(&attr, &all)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let argv = (["/usr/bin/env"] + args).map { strdup($0) } + [nil]
    let envp = e.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, "/usr/bin/env", &actions, &attr, argv, envp)
    guard rc == 0 else { throw StampError.badInput("cannot run \(args.first ?? ""): \(String(cString: strerror(rc)))") }
    return pid
}

/// The exit status of a finished child (128 + signal when a signal ended it), or nil while it runs.
func exitStatus(_ pid: pid_t, wait: Bool = true) -> Int32? {
    var status: Int32 = 0
    while true {
        let r = waitpid(pid, &status, wait ? 0 : WNOHANG)
        if r < 0 && errno == EINTR { continue }
        if r == 0 { return nil }
        break
    }
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

/// Runs a program to completion, capturing its output.
@discardableResult
func run(_ args: [String], env: [String: String] = [:]) throws -> RunResult {
    let base = testRoot + "/run-" + UUID().uuidString
    defer {
        unlink(base + ".out")
        unlink(base + ".err")
    }
    let pid = try spawn(args, env: env, stdout: base + ".out", stderr: base + ".err")
    let code = exitStatus(pid)!
    let od = (try? Data(contentsOf: URL(fileURLWithPath: base + ".out"))) ?? Data()
    let ed = (try? Data(contentsOf: URL(fileURLWithPath: base + ".err"))) ?? Data()
    return RunResult(status: code, out: String(decoding: od, as: UTF8.self), err: String(decoding: ed, as: UTF8.self))
}

/// The `stamp` executable: `$STAMP_BIN` (the Makefile sets it), else the debug build.
var stampBin: String {
    if let b = ProcessInfo.processInfo.environment["STAMP_BIN"], !b.isEmpty { return b }
    return FileManager.default.currentDirectoryPath + "/.build/debug/stamp"
}

/// One scan cache for the `stamp` runs of this test process, not the user's.
let testCacheDir: String = testRoot + "/cache"

@discardableResult
func stamp(_ args: [String], env: [String: String] = [:]) throws -> RunResult {
    try run([stampBin] + args, env: ["STAMP_CACHE_DIR": testCacheDir].merging(env) { $1 })
}

/// Settings for a build of `base` into `output` at a fixed time.
func settings(_ base: String, _ output: String, version: String = "v2.1-canary") -> StampSettings {
    var s = StampSettings()
    s.base = base
    s.output = output
    s.version = version
    s.revision = "0123456789abcdef0123456789abcdef01234567"
    s.created = "2025-04-05T00:00:00Z"
    return s
}

func build(_ s: StampSettings, env: [String: String] = [:]) throws -> BuildResult {
    let plan = try StampPlan.resolve(s, environment: env, gitRevision: { nil }, gitSource: { nil })
    return try Stamper.build(plan, diagnostics: .silent)
}

func readJSON(_ path: String) throws -> JSONValue { try JSONValue.parse(try ReadableFile(path).readAll()) }

func bytes(_ path: String) throws -> [UInt8] { try ReadableFile(path).readAll(limit: 1 << 30) }

func jsonOf(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

/// Files left in a folder, temporary ones included.
func listing(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }

/// Edits the single image of an OCI layout folder (index.json → manifest → config) and fixes the
/// digests up the chain, as an attacker or a buggy tool would.
/// Puts `layer` (an uncompressed tar) in a single-image layout in place of its last layer, in
/// the manifest and the config's diff_ids alike: a stamp layer swapped behind stamp's back.
func replaceLastLayer(of dir: String, with layer: [UInt8]) throws {
    let d = Digester.digest(layer)
    try Data(layer).write(to: URL(fileURLWithPath: dir + "/blobs/sha256/" + Digest.hex(d)))
    try editLayout(
        dir,
        config: { c in
            var rootfs = c["rootfs"]!
            rootfs["diff_ids"] = .array(Array(rootfs["diff_ids"]!.arrayValue!.dropLast()) + [.string(d)])
            c["rootfs"] = rootfs
        },
        manifest: { m in
            m["layers"] = .array(
                Array(m["layers"]!.arrayValue!.dropLast()) + [
                    Descriptor(mediaType: MediaType.ociLayer, digest: d, size: Int64(layer.count)).json
                ])
        })
}

func editLayout(
    _ dir: String, config editConfig: ((inout JSONValue) -> Void)? = nil,
    manifest editManifest: ((inout JSONValue) -> Void)? = nil
) throws {
    var index = try readJSON(dir + "/index.json")
    var top = Descriptor(json: index["manifests"]!.arrayValue![0])
    precondition(MediaType.isManifest(top.mediaType), "editLayout wants a single-image layout")
    var manifest = try readJSON(dir + "/blobs/sha256/" + Digest.hex(top.digest))
    if let editConfig {
        var cd = Descriptor(json: manifest["config"]!)
        var config = try readJSON(dir + "/blobs/sha256/" + Digest.hex(cd.digest))
        editConfig(&config)
        let cb = JSONValue.encode(config)
        cd.digest = Digester.digest(cb)
        cd.size = Int64(cb.count)
        try Data(cb).write(to: URL(fileURLWithPath: dir + "/blobs/sha256/" + Digest.hex(cd.digest)))
        manifest["config"] = cd.json
    }
    editManifest?(&manifest)
    let mb = JSONValue.encode(manifest)
    top.digest = Digester.digest(mb)
    top.size = Int64(mb.count)
    try Data(mb).write(to: URL(fileURLWithPath: dir + "/blobs/sha256/" + Digest.hex(top.digest)))
    index["manifests"] = .array([top.json])
    try Data(JSONValue.encode(index)).write(to: URL(fileURLWithPath: dir + "/index.json"))
}

/// A one-platform, un-nested sample layout (easy to edit).
func simpleLayout(_ dir: String) throws -> String {
    var o = SampleImage.Options()
    o.platforms = [Platform(os: "linux", architecture: "amd64")]
    o.attestations = false
    o.nested = false
    let p = dir + "/simple"
    try SampleImage.write(to: p, format: .oci, options: o)
    return p
}

/// The first layer blob of a single-image layout.
func firstLayerPath(_ dir: String) throws -> String {
    let index = try readJSON(dir + "/index.json")
    let top = Descriptor(json: index["manifests"]!.arrayValue![0])
    let manifest = try readJSON(dir + "/blobs/sha256/" + Digest.hex(top.digest))
    let layer = Descriptor(json: manifest["layers"]!.arrayValue![0])
    return dir + "/blobs/sha256/" + Digest.hex(layer.digest)
}

/// Runs a Python program given as text, with `Fixtures/` (image_kit.py) importable.
func python(_ code: String, _ args: [String]) throws -> RunResult {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures"
    return try run(["python3", "-c", code] + args, env: ["PYTHONPATH": fixtures])
}

/// The cache the slow real-consumer tests keep outside the clone (`$STAMP_TEST_CACHE`, else
/// ~/.cache/stamp-test): PyPI wheels, root file systems.
var testCache: String {
    if let c = ProcessInfo.processInfo.environment["STAMP_TEST_CACHE"], !c.isEmpty { return c }
    return NSHomeDirectory() + "/.cache/stamp-test"
}

/// A command from a PyPI package (check-jsonschema), installed once into a venv in the test
/// cache. Throws with the reason when PyPI cannot be reached.
func pypiCommand(_ package: String, _ command: String) throws -> String {
    let venv = testCache + "/tools-venv"
    let exe = venv + "/bin/" + command
    if FileManager.default.isExecutableFile(atPath: exe) { return exe }
    try FileManager.default.createDirectory(atPath: testCache, withIntermediateDirectories: true)
    let r = try run([
        "flock", testCache + "/tools-venv.lock", "sh", "-c",
        "[ -x \"$1/bin/$3\" ] || { python3 -m venv \"$1\" && \"$1/bin/pip\" install -q --disable-pip-version-check "
            + "\"$2\"; }",
        "sh", venv, package, command,
    ])
    guard r.status == 0, FileManager.default.isExecutableFile(atPath: exe) else {
        throw StampError.badInput(
            "pip install \(package) failed (PyPI unreachable?): \(r.err.split(separator: "\n").last ?? "")")
    }
    return exe
}

/// check-jsonschema's path; when it cannot be installed (PyPI unreachable), nil and the test
/// fails saying so: a schema check that did not run is not a check that passed.
func jsonSchemaChecker() -> String? {
    do { return try pypiCommand("check-jsonschema", "check-jsonschema") } catch {
        Issue.record("check-jsonschema is needed and could not be installed: \(error)")
        return nil
    }
}

/// The repository's root folder (schemas/, action.yml).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// Validates a JSON document (text) against `schemas/NAME.schema.json` with check-jsonschema;
/// returns its complaint, or nil when the document is valid.
func schemaComplaint(_ json: String, schema name: String) throws -> String? {
    let checker = try pypiCommand("check-jsonschema", "check-jsonschema")
    let dir = try tempDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try json.write(toFile: dir + "/doc.json", atomically: true, encoding: .utf8)
    let r = try run([checker, "--schemafile", repoRoot + "/schemas/\(name).schema.json", dir + "/doc.json"])
    return r.status == 0 ? nil : r.out + r.err
}

/// A fixture made once per test process, on first use and under a lock, and kept to the end
/// (a registry with two pushed images, HTTP servers, a Prometheus): the tests of a suite share
/// it instead of each waiting for its start.
final class SharedFixture<T: Sendable>: Sendable {
    private let value = Mutex<T?>(nil)
    private let make: @Sendable () throws -> T
    init(_ make: @escaping @Sendable () throws -> T) { self.make = make }
    func get() throws -> T {
        try value.withLock { v in
            if let v { return v }
            let made = try make()
            v = made
            return made
        }
    }
}
