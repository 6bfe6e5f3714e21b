import Foundation
import Testing
import Hashing
import Layers
import OCI
@testable import StampCore

/// A fresh folder for one test.
func tempDir() throws -> String {
    let p = NSTemporaryDirectory() + "stamp-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
    return p
}

struct RunResult {
    var status: Int32
    var out: String
    var err: String
}

/// Runs a program found on PATH (or by path), capturing its output.
@discardableResult
func run(_ args: [String], env: [String: String] = [:], cwd: String? = nil) throws -> RunResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    var e = ProcessInfo.processInfo.environment
    for (k, v) in env { e[k] = v }
    p.environment = e
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    // Output goes to files, so a chatty child never blocks on a full pipe.
    let base = NSTemporaryDirectory() + "stamp-run-" + UUID().uuidString
    FileManager.default.createFile(atPath: base + ".out", contents: nil)
    FileManager.default.createFile(atPath: base + ".err", contents: nil)
    defer { unlink(base + ".out"); unlink(base + ".err") }
    p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".out"))
    p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".err"))
    try p.run()
    p.waitUntilExit()
    let od = try Data(contentsOf: URL(fileURLWithPath: base + ".out"))
    let errData = try Data(contentsOf: URL(fileURLWithPath: base + ".err"))
    return RunResult(status: p.terminationStatus, out: String(decoding: od, as: UTF8.self), err: String(decoding: errData, as: UTF8.self))
}

/// The `stamp` executable: `$STAMP_BIN` (the Makefile sets it), else the debug build.
var stampBin: String {
    if let b = ProcessInfo.processInfo.environment["STAMP_BIN"], !b.isEmpty { return b }
    return FileManager.default.currentDirectoryPath + "/.build/debug/stamp"
}

@discardableResult
func stamp(_ args: [String], env: [String: String] = [:], cwd: String? = nil) throws -> RunResult {
    try run([stampBin] + args, env: env, cwd: cwd)
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
    let plan = try StampPlan.resolve(s, environment: env, gitRevision: { nil })
    return try Stamper.build(plan, diagnostics: .silent)
}

func readJSON(_ path: String) throws -> JSONValue { try JSONValue.parse(try ReadableFile(path).readAll()) }

func bytes(_ path: String) throws -> [UInt8] { try ReadableFile(path).readAll(limit: 1 << 30) }

func jsonOf(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

/// Files left in a folder, temporary ones included.
func listing(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }

/// Edits the single image of an OCI layout folder (index.json → manifest → config) and fixes the
/// digests up the chain, as an attacker or a buggy tool would.
func editLayout(_ dir: String, config editConfig: ((inout JSONValue) -> Void)? = nil, manifest editManifest: ((inout JSONValue) -> Void)? = nil) throws {
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
