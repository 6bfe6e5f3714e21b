import Dispatch
import Foundation
import IO
internal import CIsal

/// The uncompressed bytes of a gzip stream, inflated with ISA-L (2-3x zlib on x86-64). Each
/// member's CRC-32 and size are checked; concatenated members are read one after another.
/// After the last member, zero padding is read and ignored (as gzip and Python do); anything
/// else is an error, as Python, `gzip -t` and umoci find it: nothing hides behind a layer's
/// stream. Errors name `label` (the layer).
public final class GzipInflateSource: ByteSource {
    private let inner: ByteSource
    private let label: String
    private let state: UnsafeMutablePointer<inflate_state>
    private let input: UnsafeMutableRawBufferPointer
    private var inputEnd = false
    private var finished = false

    public init(_ inner: ByteSource, label: String = "gzip stream") {
        self.inner = inner
        self.label = label
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
        if n == 0 {
            inputEnd = true
            return
        }
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
                throw ArchiveError.format("\(label): " + Self.describe(rc))
            }
            let produced = buffer.count - Int(state.pointee.avail_out)
            if state.pointee.block_state == ISAL_BLOCK_FINISH {
                // End of a member: another may follow (its magic may straddle two reads).
                try refill()
                if state.pointee.avail_in == 1, !inputEnd {
                    let first = state.pointee.next_in[0]
                    input.storeBytes(of: first, toByteOffset: 0, as: UInt8.self)
                    let n = try inner.read(into: UnsafeMutableRawBufferPointer(rebasing: input[1...]))
                    if n == 0 { inputEnd = true }
                    state.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    state.pointee.avail_in = UInt32(1 + n)
                }
                if state.pointee.avail_in >= 2, state.pointee.next_in[0] == 0x1f, state.pointee.next_in[1] == 0x8b {
                    let next = state.pointee.next_in, avail = state.pointee.avail_in
                    isal_inflate_reset(state)
                    state.pointee.crc_flag = UInt32(ISAL_GZIP)
                    state.pointee.next_in = next
                    state.pointee.avail_in = avail
                } else {
                    finished = true
                    let padding = ZeroCheckingSink()
                    try padding.write(
                        UnsafeRawBufferPointer(start: state.pointee.next_in, count: Int(state.pointee.avail_in)))
                    state.pointee.avail_in = 0
                    _ = try copyStream(from: inner, to: padding)
                    if let at = padding.firstNonZero {
                        throw ArchiveError.format(
                            "\(label): trailing garbage after the gzip stream (\(padding.count) bytes, not zero "
                                + "padding from byte \(at))"
                        )
                    }
                }
                if produced > 0 || finished { return produced }
                continue
            }
            if produced > 0 { return produced }
            if inputEnd && state.pointee.avail_in == 0 {
                throw ArchiveError.format("\(label): gzip: the stream ends before its last block (truncated)")
            }
            if before == 0 && state.pointee.avail_in == 0 && inputEnd {
                throw ArchiveError.format("\(label): gzip: truncated")
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

/// Counts what passes and where the first non-zero byte was.
final class ZeroCheckingSink: ByteSink {
    var count: Int64 = 0
    var firstNonZero: Int64?
    func write(_ buffer: UnsafeRawBufferPointer) throws {
        if firstNonZero == nil, let i = buffer.firstIndex(where: { $0 != 0 }) { firstNonZero = count + Int64(i) }
        count += Int64(buffer.count)
    }
}

/// A source with some bytes already read from it put back in front.
final class PrefixedSource: ByteSource {
    private var prefix: [UInt8]
    private let inner: ByteSource
    init(_ prefix: [UInt8], _ inner: ByteSource) {
        self.prefix = prefix
        self.inner = inner
    }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard !prefix.isEmpty else { return try inner.read(into: buffer) }
        let n = min(prefix.count, buffer.count)
        prefix.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
        prefix.removeFirst(n)
        return n
    }
}

/// Reads a source on a thread of its own, a few buffers ahead of the consumer, so that the
/// work below (reading the blob, hashing it, inflating it) and the work above (parsing the
/// tar, hashing it again) run on two cores. The consumer must read to the end (or call
/// `drain()`) before it touches the sources below again.
///
/// Each slot is written by the producer thread only between `free.wait()` and
/// `filled.signal()`, and read by the consumer only between `filled.wait()` and `free.signal()`:
/// the semaphores order every access, which is why the unchecked conformance is safe.
public final class PipelinedSource: ByteSource, @unchecked Sendable {
    private static let depth = 4
    private static let chunk = 256 << 10

    private let inner: ByteSource
    private var slots: [[UInt8]]
    private var lengths: [Int]
    private let filled = DispatchSemaphore(value: 0)
    // Created at 0 and signalled up: libdispatch refuses to free a semaphore whose count is
    // below the value it was created with.
    private let free = DispatchSemaphore(value: 0)
    private var producerError: Error?
    private let done = DispatchSemaphore(value: 0)
    private var readSlot = 0
    private var readOffset = 0
    private var ended = false
    private var started = false

    public init(_ inner: ByteSource) {
        self.inner = inner
        slots = Array(repeating: [UInt8](repeating: 0, count: Self.chunk), count: Self.depth)
        lengths = Array(repeating: 0, count: Self.depth)
        for _ in 0..<Self.depth { free.signal() }
    }

    private func start() {
        started = true
        // Unowned: a consumer that lets go without reading to the end runs `deinit`, which
        // drains and waits for this thread's last signal before the object goes away.
        Thread.detachNewThread { [unowned(unsafe) self] in
            var slot = 0
            while true {
                free.wait()
                var n = 0
                do {
                    n = try slots[slot].withUnsafeMutableBytes { try inner.read(into: $0) }
                } catch {
                    producerError = error
                    n = 0
                }
                lengths[slot] = n
                filled.signal()
                if n == 0 { break }
                slot = (slot + 1) % Self.depth
            }
            done.signal()
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if !started { start() }
        guard !ended else { return 0 }
        if readOffset == 0 { filled.wait() }
        let n = lengths[readSlot]
        if n == 0 {
            ended = true
            done.wait()
            if let e = producerError { throw e }
            return 0
        }
        let take = min(buffer.count, n - readOffset)
        slots[readSlot].withUnsafeBytes {
            buffer.baseAddress!.copyMemory(from: $0.baseAddress! + readOffset, byteCount: take)
        }
        readOffset += take
        if readOffset == n {
            readOffset = 0
            readSlot = (readSlot + 1) % Self.depth
            free.signal()
        }
        return take
    }

    /// Reads what is left and waits for the producer: afterwards the sources below are idle.
    public func drain() {
        guard started, !ended else { return }
        _ = try? copyStream(from: self, to: NullSink())
    }

    deinit { drain() }
}
