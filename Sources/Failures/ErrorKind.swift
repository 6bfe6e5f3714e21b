/// What kind of failure an error is. What a caller does about one — retry it, which exit
/// status it gets, whether `verify` calls it a finding about the image or a failure to look —
/// is decided from its kind, never from its type or its text.
public enum ErrorKind: String, Sendable, CaseIterable {
    /// A flag, argument or setting is wrong.
    case usage
    /// An input (an image, an archive, a document, a frontend) is malformed or unsupported.
    case badInput
    /// A file, image, tag or blob that was asked for does not exist.
    case notFound
    /// Bytes do not match the digest or size that names them.
    case corrupt
    /// The network or a server failed in a way that may pass: worth retrying.
    case network
    /// Credentials are missing or refused, or access is denied.
    case denied
    /// A server answered, and the answer is no (an HTTP error, a protocol it does not follow).
    case refused
    /// Reading or writing a local file failed (permissions, a full disk).
    case io
    /// `--locked`: the base is not the one the lock file names.
    case moved
    /// A C library failed where it should not (allocation, an internal bound).
    case library

    /// The process's exit status for an error of this kind (64, bad command-line syntax, is
    /// ArgumentParser's).
    public var exitStatus: Int32 { self == .moved ? 3 : 2 }

    /// Whether doing the same again may succeed.
    public var isTransient: Bool { self == .network }
}

/// An error that knows its kind.
public protocol KindedError: Error, CustomStringConvertible {
    var kind: ErrorKind { get }
}

extension ErrorKind {
    /// The kind of `error`; `unknown` for an error that does not say (a library's own).
    public static func of(_ error: any Error, unknown: ErrorKind) -> ErrorKind {
        (error as? any KindedError)?.kind ?? unknown
    }
}
