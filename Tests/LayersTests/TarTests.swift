import Foundation
import Testing
import Hashing
import IO
import OCI
import TestSupport
@testable import Layers

@Suite struct TarTests {
    func writeSample(_ path: String) throws {
        let f = try WritableFile(path: path)
        let tw = TarWriter(sink: f, mtime: 1_700_000_000)
        try tw.begin(.init(path: "app", kind: .directory, mode: 0o755))
        try tw.addFile("app/version.txt", Array("v1\n".utf8))
        let long = "app/" + String(repeating: "d", count: 120) + "/My Logo (1) é.svg"
        try tw.addFile(long, Array("<svg/>".utf8), mode: 0o600, uid: 1000, gid: 1000)
        try tw.begin(.init(path: "app/link", kind: .symlink("version.txt"), mode: 0o777))
        try tw.finish()
        try f.commit(to: path)
    }

    @Test func bsdtarReadsWhatWeWrite() throws {
        let dir = try tempDir()
        try writeSample(dir + "/a.tar")
        let r = try runTool(["bsdtar", "-tvf", dir + "/a.tar"])
        #expect(r.status == 0, "\(r.err)")
        let lines = r.out.split(separator: "\n")
        #expect(lines.count == 4)
        #expect(lines[1].contains("app/version.txt"))
        #expect(lines[2].contains("My Logo (1) é.svg"))
        #expect(lines[2].hasPrefix("-rw-------  0 1000   1000"))
        #expect(lines[3].contains("app/link -> version.txt"))
        let cat = try runTool(["bsdtar", "-xOf", dir + "/a.tar", "app/version.txt"])
        #expect(cat.out == "v1\n")
    }

    @Test func indexFindsEntriesAndData() throws {
        let dir = try tempDir()
        try writeSample(dir + "/a.tar")
        let idx = try TarIndex(path: dir + "/a.tar")
        #expect(idx.names.count == 4)
        #expect(try idx.read("app/version.txt") == Array("v1\n".utf8))
        #expect(try idx.read("./app/link") == Array("v1\n".utf8))  // symlink followed inside the archive
        let long = idx.names.first { $0.hasSuffix(".svg") }
        #expect(long?.utf8.count ?? 0 > 100)
    }

    @Test func sameEntriesSameBytes() throws {
        let dir = try tempDir()
        try writeSample(dir + "/a.tar")
        try writeSample(dir + "/b.tar")
        #expect(try ReadableFile(dir + "/a.tar").readAll() == ReadableFile(dir + "/b.tar").readAll())
    }

    @Test func rejectsEntriesEscapingTheRoot() throws {
        let dir = try tempDir()
        for name in ["../evil", "/etc/passwd", "a/../../b"] {
            let f = try WritableFile(path: dir + "/e.tar")
            let tw = TarWriter(sink: f, mtime: 0)
            try tw.addFile(name, [1])
            try tw.finish()
            try f.commit(to: dir + "/e.tar")
            #expect { try TarIndex(path: dir + "/e.tar") } throws: { "\($0)".contains("escapes the archive root") }
            unlink(dir + "/e.tar")
        }
    }

    @Test func rejectsTruncatedArchives() throws {
        let dir = try tempDir()
        try writeSample(dir + "/a.tar")
        let bytes = try ReadableFile(dir + "/a.tar").readAll()
        FileManager.default.createFile(atPath: dir + "/t.tar", contents: Data(bytes.prefix(700)))
        #expect { try TarIndex(path: dir + "/t.tar") } throws: { "\($0)".contains("truncated") }
        // Cut inside the padding after version.txt's 3 bytes (header at 512, data at 1024).
        FileManager.default.createFile(atPath: dir + "/p.tar", contents: Data(bytes.prefix(1124)))
        #expect { try TarIndex(path: dir + "/p.tar") } throws: { "\($0)".contains("truncated") }
        // Cut exactly after an entry, without the end blocks: what some writers make; read.
        FileManager.default.createFile(atPath: dir + "/e.tar", contents: Data(bytes.prefix(1536)))
        #expect(try TarIndex(path: dir + "/e.tar").entries["app/version.txt"]?.size == 3)
        FileManager.default.createFile(
            atPath: dir + "/n.tar", contents: Data("not a tar at all".utf8 + [UInt8](repeating: 7, count: 600)))
        #expect { try TarIndex(path: dir + "/n.tar") } throws: { "\($0)".contains("not a tar archive") }
    }

    @Test(arguments: [Compression.gzip, .zstd, .none])
    func compressesAndReadsBack(_ c: Compression) throws {
        let tar = MemorySink()
        let tw = TarWriter(sink: tar, mtime: 0)
        var payload = [UInt8](repeating: 0, count: 300_000)
        var x: UInt32 = 1
        for i in payload.indices {
            x = x &* 1_103_515_245 &+ 12345
            payload[i] = UInt8(truncatingIfNeeded: x >> 16)
        }
        try tw.addFile("data.bin", payload)
        try tw.finish()

        let out = MemorySink()
        let digest = DigestingSink(out)
        let cs = try CompressingSink(c, next: digest)
        try cs.write(tar.bytes)
        try cs.finish()
        #expect(Compression.sniff(Array(out.bytes.prefix(4))) == c)
        if c == .gzip { #expect(out.bytes[4..<8].allSatisfy { $0 == 0 }, "gzip header must carry no timestamp") }

        // One pass: blob digest from the compressed bytes, diff_id from the decompressed ones.
        let blob = HashingSource(MemorySource(out.bytes))
        let reader = try LayerReader(source: blob, mode: .raw, label: "t")
        let diff = DigestingSink(nil)
        _ = try reader.next()
        try reader.readData(into: diff)
        #expect(reader.detectedCompression == c)
        #expect(try blob.finish() == Digester.digest(out.bytes))
        #expect(diff.digester.finalizeDigest() == Digester.digest(tar.bytes))

        let entries = try LayerReader(source: MemorySource(out.bytes), mode: .tar, label: "t")
        let e = try #require(try entries.next())
        #expect(e.path == "data.bin" && e.size == 300_000)
        #expect(try entries.readData(limit: 1 << 20) == payload)
    }
}
