import Foundation
import Testing
import TestSupport
@testable import StampCore

/// Peak memory of `stamp build` and `stamp verify` does not grow with the size of a base layer:
/// blobs are streamed in bounded chunks, never held whole. Measured with GNU time's max RSS on a
/// base with a 320 MiB layer against the same base without it.
@Suite(.serialized) struct StreamingTests {
    func peakRSS(_ args: [String]) throws -> Int {
        let r = try run(["/usr/bin/time", "-f", "%M", stampBin] + args)
        #expect(r.status == 0, "\(r.err)")
        let last = r.err.split(separator: "\n").last.map(String.init) ?? ""
        return try #require(Int(last.trimmingCharacters(in: .whitespaces)), "no RSS in: \(r.err)")
    }

    @Test func memoryIsFlatAsTheLayerGrows() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let big = dir + "/big.bin"
        #expect(try run(["sh", "-c", "head -c 335544320 /dev/urandom > '\(big)'"]).status == 0)
        let common = [
            "--format", "oci-archive", "--platform", "linux/amd64", "--no-attestations", "--flat", "--compression",
            "gzip",
        ]
        #expect(try stamp(["sample", "--output", dir + "/small.tar"] + common).status == 0)
        #expect(try stamp(["sample", "--output", dir + "/big.tar", "--extra-file", big] + common).status == 0)
        unlink(big)
        let sizeBig = try FileManager.default.attributesOfItem(atPath: dir + "/big.tar")[.size] as! Int
        #expect(sizeBig > 300 << 20)

        var rss: [String: Int] = [:]
        for name in ["small", "big"] {
            rss["build-" + name] = try peakRSS([
                "build", "--base", "\(dir)/\(name).tar", "--version", "v1", "--created", "0",
                "--output", "\(dir)/\(name)-out.tar", "-q",
            ])
            rss["verify-" + name] = try peakRSS(["verify", "\(dir)/\(name)-out.tar"])
            unlink("\(dir)/\(name)-out.tar")
        }
        try interruptedBuildLeavesNothing(base: "\(dir)/big.tar", dir: dir)
        try progressLineOnATerminalOnly(base: "\(dir)/big.tar", dir: dir)
        // Kilobytes. The layer is 320 MiB; a whole-blob read would add at least that much.
        for step in ["build", "verify"] {
            let small = rss[step + "-small"]!, bigRSS = rss[step + "-big"]!
            #expect(
                bigRSS - small < 24 * 1024,
                "\(step): \(small) KiB with a small base, \(bigRSS) KiB with a 320 MiB layer")
            #expect(bigRSS < 96 * 1024, "\(step): peak RSS \(bigRSS) KiB")
        }
        print("peak RSS (KiB): \(rss.sorted { $0.key < $1.key })")
    }

    /// A local frontend's scripts are read one at a time and spooled once rewritten: 48 MiB of
    /// JavaScript (24 chunks of 2 MiB that import each other) costs the build a few MiB, not 48.
    @Test func memoryIsFlatAsTheFrontendGrows() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(
            try stamp(["sample", "--output", dir + "/base.tar", "--platform", "linux/amd64", "--no-attestations"])
                .status == 0)
        for (name, count) in [("small", 1), ("big", 24)] {
            let assets = dir + "/" + name + "/assets"
            try FileManager.default.createDirectory(atPath: assets, withIntermediateDirectories: true)
            let imports = (0..<count).map { "import(\"./assets/chunk-\($0).js\");" }.joined()
            try Data(("<script type=\"module\" src=\"/index.js\"></script>").utf8).write(
                to: URL(fileURLWithPath: dir + "/" + name + "/index.html"))
            try Data(imports.utf8).write(to: URL(fileURLWithPath: dir + "/" + name + "/index.js"))
            for i in 0..<count {
                let next = i + 1 < count ? "import \"./chunk-\(i + 1).js\";" : ""
                let body = next + String(repeating: "export const v\(i) = \"\(i)\";\n", count: (2 << 20) / 24)
                try Data(body.utf8).write(to: URL(fileURLWithPath: "\(assets)/chunk-\(i).js"))
            }
        }
        var rss: [String: Int] = [:]
        for name in ["small", "big"] {
            rss[name] = try peakRSS([
                "build", "--base", dir + "/base.tar", "--version", "v1", "--created", "0", "--assets", dir + "/" + name,
                "--output", "\(dir)/\(name)-out.tar", "-q",
            ])
        }
        let v = try stamp(["verify", dir + "/big-out.tar"])
        #expect(v.status == 0, "\(v.out)\(v.err)")
        #expect(rss["big"]! - rss["small"]! < 16 * 1024, "peak RSS (KiB): \(rss)")
        print("peak RSS with a 2 MiB / 48 MiB frontend (KiB): \(rss)")
    }

    /// With stderr to a file (not a terminal) no progress line is drawn, however long the step.
    func progressLineOnATerminalOnly(base: String, dir: String) throws {
        let out = dir + "/plain-out.tar"
        let plain = try run([stampBin, "build", "--base", base, "--version", "v1", "--created", "0", "--output", out])
        #expect(plain.status == 0)
        #expect(!plain.err.contains("MB/s") && !plain.err.contains("\u{1b}"), "\(plain.err)")
        unlink(out)
    }

    /// SIGTERM while the build writes: no temp file and no output remain.
    func interruptedBuildLeavesNothing(base: String, dir: String) throws {
        var caught = false
        var statuses: [Int32] = []
        for _ in 0..<5 where !caught {
            let pid = try spawn([
                stampBin, "build", "--base", base, "--version", "v1", "--created", "0", "--output", dir + "/int.tar",
                "-q",
            ])
            var status: Int32?
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                if let s = exitStatus(pid, wait: false) {
                    status = s
                    break
                }
                // Any temporary file (the stamp layer's, then the archive's) means the build is
                // writing: interrupt it there.
                if listing(dir).contains(where: { $0.hasPrefix(".int.tar.stamp-") }) {
                    kill(pid, SIGTERM)
                    caught = true
                    break
                }
                usleep(1000)
            }
            if status == nil { status = exitStatus(pid) }
            statuses.append(status!)
            if caught {
                #expect(status == 128 + SIGTERM)
                #expect(!listing(dir).contains { $0.contains("int.tar") }, "left behind: \(listing(dir))")
            } else {
                unlink(dir + "/int.tar")
            }
        }
        #expect(caught, "the build finished before it could be interrupted (exit statuses \(statuses))")
    }
}
