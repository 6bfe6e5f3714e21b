import Foundation
import Testing
import TestSupport
import Hashing
import Layers
import OCI
@testable import StampCore

/// The scan cache keeps what reading a base layer found, by blob digest and by what was asked.
@Suite struct ScanCacheTests {
    func layers(_ layout: String) throws -> [Descriptor] {
        let index = try readJSON(layout + "/index.json")
        let top = Descriptor(json: index["manifests"]!.arrayValue![0])
        let manifest = try readJSON(layout + "/blobs/sha256/" + Digest.hex(top.digest))
        return manifest["layers"]!.arrayValue!.map(Descriptor.init(json:))
    }

    func describe(_ v: MergedView) -> [String] {
        v.entries.map { "\($0.key) \($0.value.type) \($0.value.mode) \($0.value.size) \($0.value.layer)" }.sorted()
            + v.contents.map { "\($0.key) = \(Digester.digest($0.value))" }.sorted()
    }

    @Test func aLayerReadOnceIsNotReadAgain() throws {
        let dir = try tempDir()
        let layout = try simpleLayout(dir)
        let layers = try layers(layout)
        let store = DirectoryBlobStore(root: layout, name: "oci:test")
        let cache = ScanCache(directory: dir + "/cache")
        let keep: @Sendable (String) -> Bool = { $0.hasPrefix("bin/") || $0.hasPrefix("app/") }
        let capture: @Sendable (String) -> Bool = {
            $0 == "app/server/utils/boot/MetaGenerator.js" || $0 == "app/cache/fresh.txt"
        }
        let read = { (cache: ScanCache?, filter: String) in
            try MergedView.build(
                layers: layers, store: store, keep: keep, capture: capture, cache: cache, filter: filter)
        }
        let first = try read(cache, "asked: bin app")
        #expect(listing(dir + "/cache/scan").count == layers.count)
        #expect(
            first.isFile("bin/sh") && first.entries["app/old-notes.txt"] == nil
                && first.entries["app/cache/stale.txt"] == nil)
        #expect(first.contents["app/server/utils/boot/MetaGenerator.js"] != nil)

        // Every layer blob replaced by zeros of the same size: reading any of them now fails.
        for l in layers {
            try Data(count: Int(l.size)).write(
                to: URL(fileURLWithPath: layout + "/blobs/sha256/" + Digest.hex(l.digest)))
        }
        #expect(throws: StampError.self) { try read(nil, "asked: bin app") }
        // The same question from the cache: the same tree, whiteouts, opaque folder and captured
        // bytes included, without touching a blob.
        let second = try read(cache, "asked: bin app")
        #expect(describe(second) == describe(first))
        // Other flags keep other entries: another key, so the layers are read (and fail).
        #expect(throws: StampError.self) { try read(cache, "asked: bin") }
        // A damaged cache file is a miss, not an answer: the layer is read again.
        let files = listing(dir + "/cache/scan")
        let victim = dir + "/cache/scan/" + files[0]
        let text = try bytes(victim)
        try Data(text.prefix(text.count / 2)).write(to: URL(fileURLWithPath: victim))
        #expect(throws: StampError.self) { try read(cache, "asked: bin app") }
    }

    @Test func cachedBuildsGiveTheSameBytesAndNoCacheWritesNothing() throws {
        let dir = try tempDir()
        let base = try simpleLayout(dir)
        let cacheEnv = ["STAMP_CACHE_DIR": dir + "/cache"]
        var outputs: [[UInt8]] = []
        var scans: [String] = []
        for (i, extra) in [[], [], ["--no-cache"]].enumerated() {
            let out = dir + "/out\(i).tar"
            let r = try stamp(
                [
                    "build", "--base", "oci:" + base, "--version", "v1", "--created", "0", "--hash-assets", "--output",
                    out,
                    "--json",
                ] + extra, env: cacheEnv)
            #expect(r.status == 0, "\(r.err)")
            outputs.append(try bytes(out))
            let scan = try jsonOf(r.out)["scan"]
            scans.append("\(scan?["layersRead"]?.int64Value ?? -1)/\(scan?["layersFromCache"]?.int64Value ?? -1)")
        }
        #expect(outputs[0] == outputs[1] && outputs[1] == outputs[2])
        // Read, then from the cache, then read again with --no-cache (read/from cache).
        #expect(scans == ["3/0", "0/3", "3/0"], "\(scans)")
        let kept = listing(dir + "/cache/scan")
        #expect(kept.count == 3, "\(kept)")
        // --no-cache with an empty cache folder: nothing is written there.
        let r = try stamp(
            ["build", "--base", "oci:" + base, "--version", "v1", "--output", dir + "/x.tar", "--no-cache"],
            env: ["STAMP_CACHE_DIR": dir + "/unused"])
        #expect(r.status == 0, "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/unused"))
    }

    /// The blob is still checked when it is copied: a corrupt base layer fails a build whose
    /// scan came from the cache, with the same error and nothing written.
    @Test func aCorruptBlobFailsAWarmBuild() throws {
        let dir = try tempDir()
        let base = try simpleLayout(dir)
        let env = ["STAMP_CACHE_DIR": dir + "/cache"]
        #expect(
            try stamp(["build", "--base", "oci:" + base, "--version", "v1", "--output", dir + "/ok.tar"], env: env)
                .status == 0)
        let layer = try firstLayerPath(base)
        var b = try bytes(layer)
        b[b.count / 2] ^= 0xff
        try Data(b).write(to: URL(fileURLWithPath: layer))
        let outDir = try tempDir()
        let r = try stamp(
            ["build", "--base", "oci:" + base, "--version", "v1", "--output", outDir + "/out.tar"], env: env)
        #expect(r.status != 0)
        #expect(r.err.contains("digest mismatch") && r.err.split(separator: "\n").count == 1, "\(r.err)")
        #expect(listing(outDir).isEmpty)
    }
}
