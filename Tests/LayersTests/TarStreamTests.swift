import Foundation
import Testing
import TestSupport
import Hashing
import IO
@testable import Layers

/// The streaming tar reader against Python's tarfile (an independent reader) on archives GNU
/// tar writes in each of its formats, plain and gzipped, and on damaged ones.
@Suite struct TarStreamTests {
    /// The shapes layers have: folders, empty and block-sized files, a long name, UTF-8, a
    /// symlink, a hard link, odd permission bits; with `longNames` (not for v7), a FIFO and a
    /// name longer than a header holds.
    func makeTree(_ root: String, longNames: Bool) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/a/b", withIntermediateDirectories: true)
        func put(_ p: String, _ bytes: [UInt8], _ mode: Int = 0o644) throws {
            try Data(bytes).write(to: URL(fileURLWithPath: root + "/" + p))
            chmod(root + "/" + p, mode_t(mode))
        }
        try put("a/empty", [])
        try put("a/one", [7], 0o640)
        try put("a/block", [UInt8](repeating: 0x41, count: 512))
        try put("a/b/big", (0..<70_001).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 9) }, 0o4755)
        try put("a/My Logo (1) é.svg", Array("<svg/>".utf8))
        try fm.createSymbolicLink(atPath: root + "/a/link", withDestinationPath: "one")
        link(root + "/a/one", root + "/a/hard")
        if longNames {
            mkfifo(root + "/a/fifo", 0o600)  // not in v7, which has no type for it
            let dir = "deep/" + String(repeating: "d", count: 90) + "/" + String(repeating: "e", count: 50)
            try fm.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
            try put(dir + "/" + String(repeating: "n", count: 95) + ".js", Array("x".utf8))
        }
    }

    /// What Python's tarfile sees: name, kind, size, link target, permission bits, SHA-256.
    func pythonListing(_ tar: String) throws -> [String] {
        let script = """
            import hashlib, sys, tarfile
            with tarfile.open(sys.argv[1]) as t:
                for m in t.getmembers():
                    kind = "file" if m.isreg() else "dir" if m.isdir() else "symlink" if m.issym() else "hardlink" if m.islnk() else "other"
                    data = hashlib.sha256(t.extractfile(m).read()).hexdigest() if m.isreg() else "-"
                    print("|".join([m.name.rstrip("/"), kind, str(m.size if m.isreg() else 0), m.linkname, oct(m.mode & 0o7777), data]))
            """
        let r = try runTool(["python3", "-c", script, tar])
        #expect(r.status == 0, "\(r.err)")
        return r.out.split(separator: "\n").map(String.init)
    }

    func listing(_ next: () throws -> LayerReader.EntryInfo?, data: (ByteSink) throws -> Void) throws -> [String] {
        var out: [String] = []
        while let e = try next() {
            let kind: String, link: String
            switch e.type {
            case .file:
                kind = "file"
                link = ""
            case .directory:
                kind = "dir"
                link = ""
            case .symlink(let t):
                kind = "symlink"
                link = t
            case .hardlink(let t):
                kind = "hardlink"
                link = t
            case .other:
                kind = "other"
                link = ""
            }
            var digest = "-"
            if case .file = e.type {
                let sink = MemorySink()
                try data(sink)
                digest = Digester.hex(sink.bytes)
            }
            let name = e.path.hasSuffix("/") ? String(e.path.dropLast()) : e.path
            out.append(
                [name, kind, String(e.type == .file ? e.size : 0), link, "0o" + String(e.mode, radix: 8), digest]
                    .joined(separator: "|"))
        }
        return out
    }

    @Test(arguments: ["gnu", "pax", "ustar", "v7"])
    func agreesWithPythonsTarfile(_ format: String) throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try makeTree(dir + "/root", longNames: format != "v7")
        let tar = dir + "/t.tar"
        let made = try runTool(["tar", "--format=" + format, "--sort=name", "-cf", tar, "-C", dir + "/root", "."])
        #expect(made.status == 0, "\(made.err)")
        let expected = try pythonListing(tar)
        #expect(expected.count >= 10)

        let file = try ReadableFile(tar)
        let stream = TarStream(file.section(offset: 0, length: file.size), label: "t.tar", bufferSize: 4096)
        let direct = try listing(
            { try stream.next().map { .init(path: $0.path, type: $0.type, size: $0.size, mode: $0.mode) } },
            data: { try stream.readData(into: $0) })
        #expect(direct == expected)

        // Gzipped, through the layer reader (ISA-L inflates, this parser reads); the raw mode
        // gives back the tar's own bytes.
        let gz = try runTool(["sh", "-c", "gzip -n < '\(tar)' > '\(tar).gz'"])
        #expect(gz.status == 0)
        let gzFile = try ReadableFile(tar + ".gz")
        let reader = try LayerReader(
            source: gzFile.section(offset: 0, length: gzFile.size), mode: .tar, label: "t.tar.gz")
        #expect(try listing({ try reader.next() }, data: { try reader.readData(into: $0) }) == expected)
        #expect(reader.detectedCompression == .gzip)
        let raw = try LayerReader(source: gzFile.section(offset: 0, length: gzFile.size), mode: .raw, label: "t.tar.gz")
        #expect(try raw.next() != nil)
        let whole = MemorySink()
        try raw.readData(into: whole)
        #expect(whole.bytes == Array(try Data(contentsOf: URL(fileURLWithPath: tar))))
        #expect(try raw.next() == nil)
    }

    func entries(_ bytes: [UInt8]) throws -> Int {
        let stream = TarStream(MemorySource(bytes), label: "x")
        var n = 0
        while let e = try stream.next() {
            n += 1
            if case .file = e.type { try stream.readData(into: NullSink()) }
        }
        return n
    }

    @Test func reportsDamageClearly() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try makeTree(dir + "/root", longNames: true)
        #expect(
            try runTool(["tar", "--format=pax", "--sort=name", "-cf", dir + "/t.tar", "-C", dir + "/root", "."]).status
                == 0
        )
        let good = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/t.tar")))
        let count = try entries(good)
        #expect(count >= 10)

        // Without the two end blocks: still whole. Nothing at all: no entries.
        var end = good.count
        while end >= 512 && good[(end - 512)..<end].allSatisfy({ $0 == 0 }) { end -= 512 }
        #expect(try entries(Array(good[..<end])) == count)
        #expect(try entries([]) == 0)
        // Cut inside the big file's data, inside a header, inside padding: truncated.
        for cut in [end - 700, 512 + 100, end - 1] {
            #expect { try self.entries(Array(good[..<cut])) } throws: { "\($0)".contains("truncated") }
        }
        // A changed byte in the second header's name: that header's checksum fails.
        var damaged = good
        let second = try #require(
            stride(from: 512, to: good.count, by: 512).first { TarHeader.checksumOK(Array(good[$0..<($0 + 512)])) })
        damaged[second + 3] ^= 0x20
        #expect { try self.entries(damaged) } throws: { "\($0)".contains("corrupt tar header at byte \(second)") }
        #expect { try self.entries(Array("not a tar at all".utf8) + [UInt8](repeating: 7, count: 600)) } throws: {
            "\($0)".contains("not a tar archive")
        }
    }

    /// A ustar header with a valid checksum (what GNU tar cannot be made to write: a NUL type
    /// flag, a link whose size field is not zero).
    static func header(_ name: String, type: UInt8, size: Int, link: String = "") -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ at: Int, _ text: String) { for (i, b) in text.utf8.enumerated() { h[at + i] = b } }
        put(0, name)
        put(100, "0000644")
        put(108, "0000000")
        put(116, "0000000")
        put(124, String(format: "%011o", size))
        put(136, "00000000000")
        h[156] = type
        put(157, link)
        put(257, "ustar")
        put(263, "00")
        for i in 148..<156 { h[i] = 32 }
        let sum = h.reduce(0) { $0 + Int($1) }
        put(148, String(format: "%06o", sum))
        h[154] = 0
        return h
    }

    /// The cases where tar readers differ, built by hand: the index (random access) and the
    /// stream read them alike, and as Python's tarfile does (which follows the rules of Go's
    /// archive/tar, the runtimes' reader, on each of them): a NUL type flag with a trailing
    /// slash is a folder but a `0` one is a file; a symlink, a hard link and a folder whose size
    /// fields say 512 carry no data (the next header follows at once).
    @Test func bothDriversFollowTheRuntimesRules() throws {
        var bytes: [UInt8] = []
        bytes += Self.header("legacy-dir/", type: 0, size: 0)
        bytes += Self.header("plain/", type: UInt8(ascii: "0"), size: 0)
        bytes += Self.header("link", type: UInt8(ascii: "2"), size: 512, link: "target")
        bytes += Self.header("hard", type: UInt8(ascii: "1"), size: 512, link: "data.txt")
        bytes += Self.header("dir", type: UInt8(ascii: "5"), size: 512)
        bytes += Self.header("data.txt", type: UInt8(ascii: "0"), size: 3)
        bytes += Array("abc".utf8) + [UInt8](repeating: 0, count: 509)
        bytes += [UInt8](repeating: 0, count: 1024)
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/edge.tar"
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let expected = try pythonListing(path)
        let stream = TarStream(MemorySource(bytes), label: "edge.tar")
        let streamed = try listing(
            { try stream.next().map { .init(path: $0.path, type: $0.type, size: $0.size, mode: $0.mode) } },
            data: { try stream.readData(into: $0) })
        #expect(streamed == expected)
        #expect(expected.prefix(2) == ["legacy-dir|dir|0||0o644|-", "plain|file|0||0o644|\(Digester.hex([]))"])

        let index = try TarIndex(path: path)
        #expect(index.names == ["legacy-dir", "plain", "link", "hard", "dir", "data.txt"])
        #expect(index.entries["legacy-dir"]?.type == .directory)
        #expect(index.entries["plain"]?.type == .file)
        #expect(index.entries["dir"]?.type == .directory)
        #expect(try index.read("hard") == Array("abc".utf8))
        #expect(index.entries["data.txt"].map { $0.offset } == Int64(512 * 6))
    }
}
