import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// One line on stderr for a step that takes more than a second: bytes done of the total and
/// the rate, redrawn at most five times a second and erased when the step ends. Only on a
/// terminal; `ProgressLine.off` does nothing, for pipes, logs and `--quiet`.
public final class ProgressLine: @unchecked Sendable {
    public static let off = ProgressLine(label: "", total: 0, enabled: false)

    private let label: String
    private let total: Int64
    private let enabled: Bool
    private let after: UInt64
    private let fd: Int32
    private let start = DispatchTime.now().uptimeNanoseconds
    private var done: Int64 = 0
    private var lastDraw: UInt64 = 0
    private var drawn = false
    private var lock = pthread_mutex_t()

    /// `after`: nanoseconds before the first draw (a step shorter than that draws nothing).
    public init(label: String, total: Int64, enabled: Bool, after: UInt64 = 1_000_000_000, fd: Int32 = 2) {
        self.label = label; self.total = total; self.enabled = enabled; self.after = after; self.fd = fd
        pthread_mutex_init(&lock, nil)
    }

    deinit { pthread_mutex_destroy(&lock) }

    /// Whether stderr is a terminal (where a redrawn line makes sense).
    public static var stderrIsTerminal: Bool { isatty(2) == 1 }

    public func add(_ n: Int) {
        guard enabled else { return }
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        done += Int64(n)
        let now = DispatchTime.now().uptimeNanoseconds
        guard now - start >= after, lastDraw == 0 || now - lastDraw >= 200_000_000 else { return }
        lastDraw = now
        let seconds = Double(now - start) / 1e9
        let rate = Double(done) / seconds
        var line = "\r\u{1b}[K\(label)  \(Self.mb(done))"
        if total > 0 { line += " / \(Self.mb(total))" }
        line += "  \(Self.mb(Int64(rate)))/s"
        emit(line)
        drawn = true
    }

    /// Erases the line, if one was drawn.
    public func finish() {
        guard enabled else { return }
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if drawn { emit("\r\u{1b}[K") }
        drawn = false
    }

    private func emit(_ s: String) {
        var s = s
        s.withUTF8 { b in _ = write(fd, b.baseAddress, b.count) }
    }

    static func mb(_ n: Int64) -> String {
        let v = Double(n) / 1_000_000
        let tenths = Int((v * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) MB"
    }
}

extension ObservedSource {
    /// Counts the bytes read on a progress line.
    public convenience init(_ inner: ByteSource, _ progress: ProgressLine) {
        self.init(inner) { progress.add($0.count) }
    }
}
