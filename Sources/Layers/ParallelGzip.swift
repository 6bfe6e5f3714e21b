internal import CArchive
import Dispatch

/// gzip on all cores, pigz-style, with the same bytes for any number of cores.
///
/// The input is cut at fixed 128 KiB boundaries counted from the start of the stream (never
/// where a `write` happens to end). Each block is deflated on its own, primed with the 32 KiB
/// before it as the dictionary, and ends with a sync flush (an empty stored block), so the
/// blocks concatenate into one deflate stream; the last one ends it. Blocks of a batch run in
/// parallel and are written in order. The header has no name and mtime 0; the CRC-32 and size
/// trailer is computed as the bytes pass.
///
/// A block whose bytes are spread evenly over all 256 values (images, fonts, archives: data
/// that is compressed already) is stored, not deflated: zlib spends ~25 ms per MB on such
/// bytes to save nothing. The test is integer arithmetic on the block alone, so the choice,
/// and the output, are the same on every machine.
public final class ParallelGzipSink: ByteSink {
    public static let blockSize = 128 << 10
    static let dictionarySize = 32 << 10
    /// Blocks compressed at once: enough to keep every core busy, bounded memory (2 MiB).
    static let batchBlocks = 16

    private let level: Int32
    private let next: ByteSink
    private var pending: [UInt8] = []
    private var dictionary: [UInt8] = []
    private var crc: UInt = 0
    private var total: UInt64 = 0
    private var started = false
    private var finished = false

    public init(level: Int = 6, next: ByteSink) throws {
        guard (1...9).contains(level) else { throw ArchiveError.libarchive("gzip level \(level) is not 1-9") }
        self.level = Int32(level)
        self.next = next
        crc = crc32(0, nil, 0)
        pending.reserveCapacity(Self.blockSize * Self.batchBlocks)
    }

    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        guard buffer.count > 0 else { return }
        crc = crc32(crc, buffer.baseAddress!.assumingMemoryBound(to: Bytef.self), uInt(buffer.count))
        total += UInt64(buffer.count)
        var rest = buffer[...]
        let batch = Self.blockSize * Self.batchBlocks
        while !rest.isEmpty {
            let take = min(batch - pending.count, rest.count)
            pending.append(contentsOf: rest.prefix(take))
            rest = rest.dropFirst(take)
            if pending.count == batch { try flush(final: false) }
        }
    }

    /// Compresses what is left, ends the stream and writes the trailer.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        try flush(final: true)
        var trailer = [UInt8](repeating: 0, count: 8)
        for i in 0..<4 {
            trailer[i] = UInt8(truncatingIfNeeded: UInt32(truncatingIfNeeded: crc) >> (8 * UInt32(i)))
            trailer[4 + i] = UInt8(truncatingIfNeeded: UInt32(truncatingIfNeeded: total) >> (8 * UInt32(i)))
        }
        try next.write(trailer)
    }

    private func flush(final: Bool) throws {
        if !started {
            started = true
            // ID, deflate, no flags, mtime 0, XFL as gzip sets it for the level, OS 3 (Unix).
            let xfl: UInt8 = level == 9 ? 2 : level == 1 ? 4 : 0
            try next.write([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3])
        }
        let data = pending
        let count = max(1, (data.count + Self.blockSize - 1) / Self.blockSize)
        let results = BlockResults(count)
        let dictionary = self.dictionary
        let level = self.level
        DispatchQueue.concurrentPerform(iterations: count) { i in
            let lo = i * Self.blockSize
            let hi = min(data.count, lo + Self.blockSize)
            let dict: ArraySlice<UInt8> = i == 0 ? dictionary[...] : data[max(0, lo - Self.dictionarySize)..<lo]
            results.set(i, Self.deflateBlock(data[lo..<hi], dictionary: dict, level: level, last: final && i == count - 1))
        }
        for r in results.values {
            switch r {
            case .success(let bytes): try next.write(bytes)
            case .failure(let e): throw e
            case nil: throw ArchiveError.libarchive("gzip: a block was not compressed")
            }
        }
        let joined = dictionary + data
        self.dictionary = Array(joined.suffix(Self.dictionarySize))
        pending.removeAll(keepingCapacity: true)
    }

    static func deflateBlock(_ input: ArraySlice<UInt8>, dictionary: ArraySlice<UInt8>, level: Int32, last: Bool) -> Result<[UInt8], Error> {
        if looksIncompressible(input) { return .success(storedBlocks(input, last: last)) }
        var s = z_stream()
        guard stamp_deflate_init_raw(&s, level) == Z_OK else { return .failure(ArchiveError.libarchive("zlib: deflateInit2 failed")) }
        defer { deflateEnd(&s) }
        if !dictionary.isEmpty {
            let rc = dictionary.withUnsafeBufferPointer { deflateSetDictionary(&s, $0.baseAddress, uInt($0.count)) }
            guard rc == Z_OK else { return .failure(ArchiveError.libarchive("zlib: deflateSetDictionary failed (\(rc))")) }
        }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&s, uLong(input.count))) + 16)
        let flush = last ? Z_FINISH : Z_SYNC_FLUSH
        let rc: Int32 = input.withUnsafeBufferPointer { inp in
            out.withUnsafeMutableBufferPointer { o in
                s.next_in = UnsafeMutablePointer(mutating: inp.baseAddress)
                s.avail_in = uInt(inp.count)
                s.next_out = o.baseAddress
                s.avail_out = uInt(o.count)
                return deflate(&s, flush)
            }
        }
        guard rc == (last ? Z_STREAM_END : Z_OK), s.avail_in == 0 else {
            return .failure(ArchiveError.libarchive("zlib: deflate returned \(rc)"))
        }
        out.removeLast(Int(s.avail_out))
        return .success(out)
    }
}

extension ParallelGzipSink {
    /// Whether the bytes look compressed already: the chance that two bytes picked at random are
    /// equal (sum of squared byte counts over n squared) is within 1/16 of a uniform
    /// distribution's 1/256. Text and code are 4 to 20 times above it; PNG, JPEG, WOFF2 and
    /// gzip data sit at it. Blocks under 4 KiB are always deflated.
    static func looksIncompressible(_ bytes: ArraySlice<UInt8>) -> Bool {
        let n = bytes.count
        guard n >= 4096 else { return false }
        var counts = [Int](repeating: 0, count: 256)
        counts.withUnsafeMutableBufferPointer { c in
            bytes.withUnsafeBufferPointer { b in
                for x in b { c[Int(x)] &+= 1 }
            }
        }
        var squares = 0
        for c in counts { squares &+= c &* c }
        // 256 * sum(c^2) <= n^2 * (1 + 1/16); n <= 128 KiB keeps it far inside Int.
        return 256 * squares <= n * n + n * n / 16
    }

    /// `bytes` as stored deflate blocks of at most 65,535 bytes. The stream is at a byte
    /// boundary here (the block before ended with a sync flush), so each block's 3 header bits
    /// and padding make one byte: 0, or 1 on the stream's last block; and it ends at one, as a
    /// sync flush would leave it.
    static func storedBlocks(_ bytes: ArraySlice<UInt8>, last: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + (bytes.count / 65_535 + 1) * 5)
        var rest = bytes
        repeat {
            let n = min(65_535, rest.count)
            let isLast = last && n == rest.count
            out += [isLast ? 1 : 0, UInt8(n & 0xff), UInt8(n >> 8), UInt8(~n & 0xff), UInt8((~n >> 8) & 0xff)]
            out += rest.prefix(n)
            rest = rest.dropFirst(n)
        } while !rest.isEmpty
        return out
    }
}

/// Results of the blocks of one batch: one slot of raw memory per block, each written by
/// exactly one worker, read after all of them are done.
private final class BlockResults: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<Result<[UInt8], Error>?>
    let count: Int
    init(_ n: Int) {
        count = n
        slots = .allocate(capacity: n)
        slots.initialize(repeating: nil, count: n)
    }
    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }
    func set(_ i: Int, _ r: Result<[UInt8], Error>) { slots[i] = r }
    var values: [Result<[UInt8], Error>?] { Array(UnsafeBufferPointer(start: slots, count: count)) }
}
