import Foundation
import Testing
import TestSupport
import Hashing
import IO
@testable import Layers

@Suite struct ParallelGzipTests {
    /// Text with long-range repeats (across block boundaries) and stretches of random bytes.
    static func sample(_ size: Int) -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        var out: [UInt8] = []
        out.reserveCapacity(size)
        let words = Array("import { useState } from 'react'; export default function App() { return null }\n".utf8)
        var n = 0
        while out.count < size {
            let take = min(size - out.count, n % 4 == 3 ? 4096 : 60_000)
            if n % 4 == 3 {
                out += (0..<take).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                for i in 0..<take { out.append(words[i % words.count]) }
            }
            n += 1
        }
        return out
    }

    static func compress(_ data: [UInt8], chunks: [Int], level: Int = 6) throws -> [UInt8] {
        let sink = MemorySink()
        let gz = try ParallelGzipSink(level: level, next: sink)
        var i = 0, k = 0
        while i < data.count {
            let n = min(chunks[k % chunks.count], data.count - i)
            try data[i..<i + n].withUnsafeBytes { try gz.write($0) }
            i += n
            k += 1
        }
        try gz.finish()
        return sink.bytes
    }

    static func decompress(_ gz: [UInt8]) throws -> [UInt8] {
        let reader = try LayerReader(source: MemorySource(gz), mode: .raw, label: "test")
        let out = MemorySink()
        if try reader.next() != nil { try reader.readData(into: out) }
        #expect(reader.detectedCompression == .gzip)
        return out.bytes
    }

    @Test(arguments: [0, 1, 131_071, 131_072, 131_073, 2 * 1024 * 1024, 2 * 1024 * 1024 + 5, 4_500_000])
    func roundTrips(_ size: Int) throws {
        let data = Self.sample(size)
        let gz = try Self.compress(data, chunks: [65_536])
        #expect(Array(gz.prefix(10)) == [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])
        if size == 0 {
            // libarchive finds no format in an empty stream; gzip itself checks it.
            let dir = try tempDir()
            try Data(gz).write(to: URL(fileURLWithPath: dir + "/empty.gz"))
            #expect(try runTool(["gzip", "-t", dir + "/empty.gz"]).status == 0)
            #expect(gz.count < 32)  // one empty member
        } else {
            #expect(try Self.decompress(gz) == data)
        }
    }

    @Test func gzipAcceptsItAndItCompresses() throws {
        let data = Self.sample(3_000_000)
        let gz = try Self.compress(data, chunks: [1 << 20])
        let dir = try tempDir()
        try Data(gz).write(to: URL(fileURLWithPath: dir + "/x.gz"))
        #expect(try runTool(["gzip", "-t", dir + "/x.gz"]).status == 0)
        let r = try runTool(["sh", "-c", "gzip -dc '\(dir)/x.gz' | sha256sum"])
        #expect(r.out.hasPrefix(Digester.hex(data)), "\(r.err)")
        // Each 128 KiB member compresses the text repeats within it away.
        #expect(gz.count < data.count / 2)
    }

    @Test func sameBytesWhateverTheWriteSizes() throws {
        let data = Self.sample(2_700_000)
        let a = try Self.compress(data, chunks: [1_000_003])
        let b = try Self.compress(data, chunks: [7, 100_000, 4096, 131_072 * 3 + 1])
        let c = try Self.compress(data, chunks: [data.count])
        #expect(a == b)
        #expect(a == c)
        // Levels are honoured.
        #expect(try Self.compress(data, chunks: [1 << 20], level: 1) != a)
    }

    /// Random bytes (an image, a font) between text: the random blocks are stored, the text
    /// blocks still deflate against the bytes before them, gzip and libarchive read it all back,
    /// and the final block can be a stored one.
    @Test func incompressibleBlocksAreStored() throws {
        var rng = SystemRandomNumberGenerator()
        let random = (0..<700_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let text = Self.sample(500_000).map { $0 == 0 ? 1 : $0 }
        #expect(ParallelGzipSink.looksIncompressible(random[0..<131_072]))
        #expect(!ParallelGzipSink.looksIncompressible(text[0..<131_072]))
        #expect(!ParallelGzipSink.looksIncompressible(random[0..<4000]))  // too short to judge
        // Base64 of random bytes: 64 of 256 values, compressible by a quarter.
        let base64 = Array(Base64.encode(Array(random[0..<98_304])).utf8)
        #expect(!ParallelGzipSink.looksIncompressible(base64[...]))

        for data in [text + random + text, random, text + random] {
            let gz = try Self.compress(data, chunks: [300_001])
            #expect(try Self.decompress(gz) == data)
            let dir = try tempDir()
            try Data(gz).write(to: URL(fileURLWithPath: dir + "/x.gz"))
            let r = try runTool(["sh", "-c", "gzip -t '\(dir)/x.gz' && gzip -dc '\(dir)/x.gz' | sha256sum"])
            #expect(r.out.hasPrefix(Digester.hex(data)), "\(r.err)")
            // The text around the random bytes still compresses.
            #expect(gz.count < random.count + 200 + (data.count - random.count) / 4)
        }
        // Stored: one member per 128 KiB (6: five whole, 44,640 bytes left), each with a 10-byte
        // header and an 8-byte trailer, and 5 bytes per stored block of at most 65,535 bytes (3
        // per whole member, 1 for the last).
        #expect(try Self.compress(random, chunks: [1 << 20]).count == random.count + 6 * 18 + 16 * 5)
    }
}

@Suite struct ProgressLineTests {
    @Test func drawsBytesTotalAndRateThenErases() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let p = ProgressLine(label: "writing out.tar", total: 2_000_000, enabled: true, after: 0, fd: fds[1])
        p.add(1_000_000)
        p.add(500_000)  // within 200 ms of the first draw: not drawn again
        p.finish()
        close(fds[1])
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = read(fds[0], &buf, buf.count)
        close(fds[0])
        let text = String(decoding: buf[0..<max(0, n)], as: UTF8.self)
        #expect(text.hasPrefix("\r\u{1b}[Kwriting out.tar  1.0 MB / 2.0 MB  "), "\(text.debugDescription)")
        #expect(text.contains(" MB/s"))
        #expect(text.hasSuffix("\r\u{1b}[K"))
        #expect(text.components(separatedBy: "MB/s").count == 2)
    }

    @Test func offDrawsNothingAndShortStepsDrawNothing() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let short = ProgressLine(label: "x", total: 10, enabled: true, fd: fds[1])  // the default: after 1 s
        short.add(10)
        short.finish()
        ProgressLine.off.add(10)
        ProgressLine.off.finish()
        close(fds[1])
        var buf = [UInt8](repeating: 0, count: 64)
        #expect(read(fds[0], &buf, buf.count) == 0)
        close(fds[0])
    }
}

@Suite struct GzipInflateTests {
    func inflate(_ gz: [UInt8]) throws -> [UInt8] {
        let out = MemorySink()
        _ = try copyStream(from: GzipInflateSource(MemorySource(gz)), to: out, chunk: 1000)
        return out.bytes
    }

    @Test func membersTrailingBytesAndDamage() throws {
        let a = ParallelGzipTests.sample(300_000), b = Array("second member\n".utf8)
        let ga = try ParallelGzipTests.compress(a, chunks: [1 << 20]),
            gb = try ParallelGzipTests.compress(b, chunks: [100])
        #expect(try inflate(ga) == a)
        // Concatenated members are one stream, as gzip -d reads them, however the reads fall.
        #expect(try inflate(ga + gb) == a + b)
        for step in [1, 2, 7, 4093] {
            let out = MemorySink()
            _ = try copyStream(from: GzipInflateSource(Trickle(ga + gb + gb, step: step)), to: out)
            #expect(out.bytes == a + b + b, "reads of \(step) bytes")
        }
        // Zero padding after the last member is read and ignored.
        let hashed = HashingSource(MemorySource(ga + [UInt8](repeating: 0, count: 512)))
        let out = MemorySink()
        _ = try copyStream(from: GzipInflateSource(hashed), to: out)
        #expect(out.bytes == a)
        #expect(try hashed.finish() == Digester.digest(ga + [UInt8](repeating: 0, count: 512)))
        // Anything else after the last member is refused (Python and gzip -t refuse it too).
        #expect { try self.inflate(ga + Array("garbage".utf8)) } throws: {
            "\($0)".contains("trailing garbage after the gzip stream")
        }
        #expect { try self.inflate(ga + [0, 0, 0, 7]) } throws: { "\($0)".contains("not zero padding from byte 3") }
        // Truncated, or a flipped byte in the trailer's CRC: clear errors.
        #expect { try self.inflate(Array(ga.dropLast(100))) } throws: { "\($0)".contains("truncated") }
        var bad = ga
        bad[bad.count - 6] ^= 0xff
        #expect { try self.inflate(bad) } throws: { "\($0)".contains("CRC-32 mismatch") }
    }
}

@Suite struct PipelinedSourceTests {
    final class Failing: ByteSource {
        var left = 3
        func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            left -= 1
            if left < 0 { throw ArchiveError.format("disk on fire") }
            buffer[0] = 7
            return 1
        }
    }

    @Test func sameBytesInOrderErrorsPassAndAbandoningIsSafe() throws {
        let data = ParallelGzipTests.sample(5_300_000)
        let gz = try ParallelGzipTests.compress(data, chunks: [1 << 20])
        let out = MemorySink()
        _ = try copyStream(from: PipelinedSource(GzipInflateSource(MemorySource(gz))), to: out, chunk: 70_001)
        #expect(out.bytes == data)
        // A failure below reaches the reader after the bytes before it.
        let failing = PipelinedSource(Failing())
        let sink = MemorySink()
        #expect { _ = try copyStream(from: failing, to: sink) } throws: { "\($0)".contains("disk on fire") }
        #expect(sink.bytes == [7, 7, 7])
        // Let go after one read: deinit drains and joins the thread (a leak or crash otherwise).
        for _ in 0..<20 {
            let p = PipelinedSource(MemorySource(data))
            var b = [UInt8](repeating: 0, count: 10)
            _ = try b.withUnsafeMutableBytes { try p.read(into: $0) }
        }
    }
}

/// A source that gives at most `step` bytes per read.
final class Trickle: ByteSource {
    let bytes: [UInt8]
    let step: Int
    var at = 0
    init(_ bytes: [UInt8], step: Int) {
        self.bytes = bytes
        self.step = step
    }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(step, buffer.count, bytes.count - at)
        bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + at, byteCount: n) }
        at += n
        return n
    }
}

@Suite struct CompressionDeterminismTests {
    /// A build on a 2-core runner and on a 16-core one must give the same layer bytes.
    @Test func zstdBytesDoNotDependOnThreads() throws {
        let data = ParallelGzipTests.sample(9_000_000)
        func zstd(_ threads: Int) throws -> [UInt8] {
            let sink = MemorySink()
            let c = try CompressingSink(.zstd, level: 3, next: sink, threads: threads)
            try data.withUnsafeBytes { try c.write($0) }
            try c.finish()
            return sink.bytes
        }
        let one = try zstd(1)
        #expect(try zstd(2) == one)
        #expect(try zstd(4) == one)
        #expect(try zstd(8) == one)
    }
}
