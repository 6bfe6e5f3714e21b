#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Paths of files on disk and inside archives and images.
public enum Path {
    public static func dirname(_ p: String) -> String {
        guard let slash = p.lastIndex(of: "/") else { return "." }
        let d = String(p[..<slash])
        return d.isEmpty ? "/" : d
    }
    public static func basename(_ p: String) -> String {
        guard let slash = p.lastIndex(of: "/") else { return p }
        return String(p[p.index(after: slash)...])
    }
    public static func exists(_ p: String) -> Bool {
        var st = stat()
        return lstat(p, &st) == 0
    }
    public static func isDirectory(_ p: String) -> Bool {
        var st = stat()
        return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Normalises a path inside an archive or image: drops `./` and leading `/`, resolves `.`;
    /// returns nil when it would escape the root (`..` above the top).
    public static func clean(_ p: String) -> String? {
        var parts: [Substring] = []
        for c in p.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." { if parts.isEmpty { return nil }; parts.removeLast(); continue }
            parts.append(c)
        }
        return parts.joined(separator: "/")
    }

    /// Whether a raw archive entry name is safe: relative and never climbing out.
    public static func isSafeEntryName(_ p: String) -> Bool {
        if p.hasPrefix("/") { return false }
        var depth = 0
        for c in p.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." { depth -= 1; if depth < 0 { return false } } else { depth += 1 }
        }
        return true
    }
}

