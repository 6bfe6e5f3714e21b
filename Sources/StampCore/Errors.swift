import Layers
/// Errors of the stamping pipeline; each prints as one line naming what is wrong.
public enum StampError: Error, Equatable, CustomStringConvertible {
    case usage(String)
    case badInput(String)
    case digestMismatch(what: String, expected: String, found: String)
    case sizeMismatch(what: String, expected: Int64, found: Int64)
    case missingBlob(String, in: String)
    case unknownMediaType(String, in: String)
    case output(String)
    /// `--locked`: the base is not the one the lock file names (exit status 3).
    case moved(String)

    public var description: String {
        switch self {
        case .usage(let m), .badInput(let m), .output(let m), .moved(let m): return m
        case let .digestMismatch(what, e, f): return "\(what): digest mismatch: expected \(e), found \(f)"
        case let .sizeMismatch(what, e, f): return "\(what): size mismatch: expected \(e) bytes, found \(f)"
        case let .missingBlob(d, src): return "\(src): missing blob \(d)"
        case let .unknownMediaType(t, w): return "\(w): unknown media type \"\(t)\""
        }
    }
}

/// Where diagnostics go: stderr, one line each. Tests pass their own.
public struct Diagnostics: Sendable {
    public var notice: @Sendable (String) -> Void
    /// Whether long steps draw a progress line (stderr is a terminal, not --quiet).
    public var showsProgress = false
    public init(notice: @escaping @Sendable (String) -> Void) { self.notice = notice }
    public static let stderr: Diagnostics = {
        var d = Diagnostics { line in
            var s = line + "\n"
            s.withUTF8 { buf in _ = fwriteStderr(buf) }
        }
        d.showsProgress = ProgressLine.stderrIsTerminal
        return d
    }()
    public static let silent = Diagnostics { _ in }

    /// A progress line for a step over `total` bytes (a no-op unless `showsProgress`).
    public func progress(_ label: String, total: Int64) -> ProgressLine {
        showsProgress ? ProgressLine(label: label, total: total, enabled: true) : .off
    }
}

#if canImport(Glibc)
import Glibc
#endif

func fwriteStderr(_ buf: UnsafeBufferPointer<UInt8>) -> Int {
    write(2, buf.baseAddress, buf.count)
}
