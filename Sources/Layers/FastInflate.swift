internal import CIsal

/// The uncompressed bytes of a gzip stream, inflated with ISA-L (2-3x zlib on x86-64). Each
/// member's CRC-32 and size are checked; concatenated members are read one after another;
/// bytes after the last member that are not another member are read (so that a hashing source
/// below sees the whole blob) and ignored, as gzip does.
public final class GzipInflateSource: ByteSource {
    private let inner: ByteSource
    private let state: UnsafeMutablePointer<inflate_state>
    private let input: UnsafeMutableRawBufferPointer
    private var inputEnd = false
    private var finished = false

    public init(_ inner: ByteSource) {
        self.inner = inner
        state = .allocate(capacity: 1)
        isal_inflate_init(state)
        state.pointee.crc_flag = UInt32(ISAL_GZIP)
        input = .allocate(byteCount: 1 << 20, alignment: 64)
        state.pointee.avail_in = 0
    }

    deinit {
        state.deallocate()
        input.deallocate()
    }

    private func refill() throws {
        guard state.pointee.avail_in == 0, !inputEnd else { return }
        let n = try inner.read(into: input)
        if n == 0 { inputEnd = true; return }
        state.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: UInt8.self)
        state.pointee.avail_in = UInt32(n)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard !finished, buffer.count > 0 else { return 0 }
        while true {
            try refill()
            state.pointee.next_out = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
            state.pointee.avail_out = UInt32(min(buffer.count, Int(UInt32.max)))
            let before = state.pointee.avail_in
            let rc = isal_inflate(state)
            guard rc == ISAL_DECOMP_OK || rc == ISAL_END_INPUT || rc == ISAL_OUT_OVERFLOW else {
                throw ArchiveError.format(Self.describe(rc))
            }
            let produced = buffer.count - Int(state.pointee.avail_out)
            if state.pointee.block_state == ISAL_BLOCK_FINISH {
                // End of a member: another may follow.
                try refill()
                if state.pointee.avail_in >= 2, state.pointee.next_in[0] == 0x1f, state.pointee.next_in[1] == 0x8b {
                    let next = state.pointee.next_in, avail = state.pointee.avail_in
                    isal_inflate_reset(state)
                    state.pointee.crc_flag = UInt32(ISAL_GZIP)
                    state.pointee.next_in = next
                    state.pointee.avail_in = avail
                } else {
                    finished = true
                    state.pointee.avail_in = 0
                    _ = try copyStream(from: inner, to: NullSink())
                }
                if produced > 0 || finished { return produced }
                continue
            }
            if produced > 0 { return produced }
            if inputEnd && state.pointee.avail_in == 0 {
                throw ArchiveError.format("gzip: the stream ends before its last block (truncated)")
            }
            if before == 0 && state.pointee.avail_in == 0 && inputEnd {
                throw ArchiveError.format("gzip: truncated")
            }
        }
    }

    static func describe(_ rc: Int32) -> String {
        switch rc {
        case ISAL_INVALID_BLOCK: return "gzip: invalid deflate block"
        case ISAL_INVALID_SYMBOL: return "gzip: invalid deflate symbol"
        case ISAL_INVALID_LOOKBACK: return "gzip: invalid back-reference distance"
        case ISAL_INVALID_WRAPPER: return "gzip: invalid header"
        case ISAL_UNSUPPORTED_METHOD: return "gzip: unsupported compression method"
        case ISAL_INCORRECT_CHECKSUM: return "gzip: CRC-32 mismatch"
        default: return "gzip: inflate error \(rc)"
        }
    }
}

/// A source with some bytes already read from it put back in front.
final class PrefixedSource: ByteSource {
    private var prefix: [UInt8]
    private let inner: ByteSource
    init(_ prefix: [UInt8], _ inner: ByteSource) { self.prefix = prefix; self.inner = inner }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard !prefix.isEmpty else { return try inner.read(into: buffer) }
        let n = min(prefix.count, buffer.count)
        prefix.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
        prefix.removeFirst(n)
        return n
    }
}
