import Dispatch
import Glibc
import IO
import Synchronization

/// How progress is shown (`--progress`, as `docker buildx build` has it): `tty` redraws one
/// line on a terminal, `plain` prints lines a CI log keeps (one per step and per blob, and one
/// every 10 s of a long transfer), `quiet` nothing; `auto` is `tty` on a terminal, else `plain`.
public enum ProgressMode: String, Sendable, CaseIterable {
    case auto, tty, plain, quiet

    /// `auto` made concrete for the stderr this process has.
    public func resolved(stderrIsTerminal: Bool = ProgressLine.stderrIsTerminal) -> ProgressMode {
        self == .auto ? (stderrIsTerminal ? .tty : .plain) : self
    }
}

/// One line on stderr for a step that takes more than a second: bytes done of the total and
/// the rate, redrawn at most five times a second and erased when the step ends (`tty`), or in
/// `plain` mode written as a new line every 10 s (a log keeps every line). `ProgressLine.off`
/// does nothing, for `--progress quiet`.
public final class ProgressLine: Sendable {
    public static let off = ProgressLine(label: "", total: 0, enabled: false)

    private let label: String
    private let total: Int64
    private let enabled: Bool
    private let plain: Bool
    private let after: UInt64
    private let fd: Int32
    private let start = DispatchTime.now().uptimeNanoseconds
    private struct Drawn { var done: Int64 = 0, lastDraw: UInt64 = 0, drawn = false }
    private let state = Mutex(Drawn())

    /// `after`: nanoseconds before the first draw (a step shorter than that draws nothing).
    /// `plain`: lines for a log instead of one redrawn line.
    public init(
        label: String, total: Int64, enabled: Bool, after: UInt64 = 1_000_000_000, fd: Int32 = 2, plain: Bool = false
    ) {
        self.label = label
        self.total = total
        self.enabled = enabled
        self.fd = fd
        self.plain = plain
        self.after = plain ? max(after, 10_000_000_000) : after
    }

    /// Whether stderr is a terminal (where a redrawn line makes sense).
    public static var stderrIsTerminal: Bool { isatty(2) == 1 }

    public func add(_ n: Int) {
        guard enabled else { return }
        state.withLock { s in
            s.done += Int64(n)
            let now = DispatchTime.now().uptimeNanoseconds
            guard now - start >= after, s.lastDraw == 0 || now - s.lastDraw >= (plain ? 10_000_000_000 : 200_000_000)
            else { return }
            s.lastDraw = now
            let seconds = Double(now - start) / 1e9
            let rate = Double(s.done) / seconds
            var line = plain ? "stamp: \(label): \(Self.mb(s.done))" : "\r\u{1b}[K\(label)  \(Self.mb(s.done))"
            if total > 0 { line += " / \(Self.mb(total))" }
            line += plain ? ", \(Self.mb(Int64(rate)))/s\n" : "  \(Self.mb(Int64(rate)))/s"
            emit(line)
            s.drawn = !plain
        }
    }

    /// Erases the line, if one was drawn.
    public func finish() {
        guard enabled else { return }
        state.withLock { s in
            if s.drawn { emit("\r\u{1b}[K") }
            s.drawn = false
        }
    }

    private func emit(_ s: String) {
        var s = s
        s.withUTF8 { b in _ = write(fd, b.baseAddress, b.count) }
    }

    /// A size as a person reads it: bytes, kB or MB (decimal, one decimal place).
    public static func size(_ n: Int64) -> String {
        if n < 10_000 { return "\(n) bytes" }
        if n < 1_000_000 { return "\(Int((Double(n) / 1000).rounded())) kB" }
        return mb(n)
    }

    public static func mb(_ n: Int64) -> String {
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
