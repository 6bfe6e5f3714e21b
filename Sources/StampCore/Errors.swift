import Dispatch
import Failures
import Layers
/// Errors of the stamping pipeline; each prints as one line naming what is wrong.
public enum StampError: KindedError, Equatable {
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

    public var kind: ErrorKind {
        switch self {
        case .usage: return .usage
        case .badInput, .unknownMediaType: return .badInput
        case .digestMismatch, .sizeMismatch: return .corrupt
        case .missingBlob: return .notFound
        case .output: return .io
        case .moved: return .moved
        }
    }
}

/// Where diagnostics go: stderr, one line each. Tests pass their own.
public struct Diagnostics: Sendable {
    public var notice: @Sendable (String) -> Void
    /// How progress shows (already resolved: `tty`, `plain` or `quiet`).
    public var progressMode: ProgressMode = .quiet
    public init(notice: @escaping @Sendable (String) -> Void) { self.notice = notice }
    public static let stderr = Diagnostics.stderr(progress: .auto)
    public static let silent = Diagnostics { _ in }

    /// Notices on stderr, progress as `mode` says (`auto`: by whether stderr is a terminal).
    public static func stderr(progress mode: ProgressMode) -> Diagnostics {
        var d = Diagnostics { line in
            var s = line + "\n"
            s.withUTF8 { buf in _ = fwriteStderr(buf) }
        }
        d.progressMode = mode.resolved()
        return d
    }

    /// Whether long steps draw a redrawn progress line (a terminal).
    public var showsProgress: Bool { progressMode == .tty }

    /// A progress line for a step over `total` bytes (a no-op under `quiet`).
    public func progress(_ label: String, total: Int64) -> ProgressLine {
        switch progressMode {
        case .tty, .auto: return ProgressLine(label: label, total: total, enabled: true)
        case .plain: return ProgressLine(label: label, total: total, enabled: true, plain: true)
        case .quiet: return .off
        }
    }

    /// A step of the job: in `plain` mode a line when it starts and one with its time when it
    /// ends (`done()`); nothing otherwise.
    public func step(_ text: String) -> Step { Step(text: text, notice: progressMode == .plain ? notice : nil) }

    /// A blob written, pushed, mounted or pulled: one line in `plain` mode (verb, digest, size, time).
    public func blob(_ verb: String, digest: String, size: Int64, seconds: Double?) {
        guard progressMode == .plain else { return }
        notice(
            "stamp:   \(verb) \(digest) (\(ProgressLine.size(size))\(seconds.map { ", " + Step.seconds($0) } ?? ""))")
    }

    /// The clock `blob` lines are timed with, in seconds.
    public static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    public struct Step: Sendable {
        let text: String
        let notice: (@Sendable (String) -> Void)?
        let start = DispatchTime.now().uptimeNanoseconds

        init(text: String, notice: (@Sendable (String) -> Void)?) {
            self.text = text
            self.notice = notice
            notice?("stamp: \(text)")
        }

        /// The step's end: `stamp: TEXT: done in 0.42 s`, and `detail` when given.
        public func done(_ detail: String? = nil) {
            notice?(
                "stamp: \(text): done in \(Self.seconds(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))"
                    + (detail.map { ", " + $0 } ?? ""))
        }

        static func seconds(_ s: Double) -> String {
            let hundredths = Int((s * 100).rounded())
            return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100) s"
        }
    }
}

#if canImport(Glibc)
    import Glibc
#endif

func fwriteStderr(_ buf: UnsafeBufferPointer<UInt8>) -> Int {
    write(2, buf.baseAddress, buf.count)
}
