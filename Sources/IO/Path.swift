import Glibc
import Synchronization

/// Paths of files on disk and inside archives and images.
public enum Path {
    /// A name for a temporary file or folder beside `target`: hidden, with this process's id and
    /// a random part, so processes sharing a folder (parallel CI jobs in /tmp) never pick the
    /// same one. Create it exclusively all the same (`O_EXCL`, `mkdir`).
    public static func temporaryName(beside target: String) -> String {
        "\(dirname(target))/.\(basename(target)).stamp-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 36)).tmp"
    }

    /// Whether two paths name the same file (device and inode, links followed).
    public static func sameFile(_ a: String, _ b: String) -> Bool {
        var sa = stat(), sb = stat()
        guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
    }

    /// What a file type is called in messages.
    public static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFREG: return "a regular file"
        case S_IFDIR: return "a folder"
        case S_IFLNK: return "a symlink"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "a special file"
        }
    }

    /// Creates a new folder beside `target` (never one that exists) and returns its path; it is
    /// removed if the process is interrupted until `TemporaryFolders.done` is called for it.
    public static func makeTemporaryDirectory(beside target: String) throws -> String {
        StaleTemporaries.sweep(dirname(target))
        for _ in 0..<100 {
            let name = temporaryName(beside: target)
            TemporaryFolders.add(name)
            if mkdir(name, 0o755) == 0 { return name }
            TemporaryFolders.done(name)
            guard errno == EEXIST else { break }
        }
        throw POSIXError(errno: errno, path: target)
    }

    public struct POSIXError: Error, CustomStringConvertible {
        public let errno: Int32
        public let path: String
        public var description: String {
            "\(path): cannot create a temporary folder beside it: \(String(cString: strerror(errno)))"
        }
    }

    /// By bytes, not characters: a `/` is a separator even where a combining mark follows it,
    /// and finding it costs no grapheme breaking (these run once per tar entry).
    public static func dirname(_ p: String) -> String {
        guard let slash = p.utf8.lastIndex(of: 0x2F) else { return "." }
        let d = String(p[..<slash])
        return d.isEmpty ? "/" : d
    }
    public static func basename(_ p: String) -> String {
        guard let slash = p.utf8.lastIndex(of: 0x2F) else { return p }
        return String(p[p.utf8.index(after: slash)...])
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
        if let fast = trimmedClean(p) { return fast }
        var parts: [Substring] = []
        for c in p.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." {
                if parts.isEmpty { return nil }
                parts.removeLast()
                continue
            }
            parts.append(c)
        }
        return parts.joined(separator: "/")
    }

    /// Whether a path is already in clean form: relative, no empty, `.` or `..` components, no
    /// trailing slash. One pass over the bytes: most archive entry names are, and skip the rest.
    public static func isClean(_ p: String) -> Bool {
        var p = p
        return p.withUTF8 { u in
            guard !u.isEmpty else { return false }
            var length = 0, dots = 0
            for b in u {
                if b == 0x2F {
                    if length == 0 || (dots == length && length <= 2) { return false }
                    length = 0
                    dots = 0
                } else {
                    length += 1
                    if b == 0x2E { dots += 1 }
                }
            }
            return length > 0 && !(dots == length && length <= 2)
        }
    }

    /// The common shapes of tar entry names, cleaned without splitting: `usr/lib`, `./usr/lib`,
    /// `usr/lib/`. Nil when the name needs the general rules.
    static func trimmedClean(_ p: String) -> String? {
        if isClean(p) { return p }
        var u = Substring(p).utf8
        while u.starts(with: [0x2E, 0x2F]) { u = u.dropFirst(2) }
        if u.last == 0x2F { u = u.dropLast() }
        guard u.count < p.utf8.count else { return nil }
        let t = String(Substring(u))
        guard isClean(t) else { return nil }
        return t
    }

    /// Whether a raw archive entry name is safe: relative and never climbing out.
    public static func isSafeEntryName(_ p: String) -> Bool {
        if trimmedClean(p) != nil { return true }
        if p.hasPrefix("/") { return false }
        var depth = 0
        for c in p.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." {
                depth -= 1
                if depth < 0 { return false }
            } else {
                depth += 1
            }
        }
        return true
    }
}

/// Temporary files and folders that killed runs left (`.NAME.stamp-PID-RANDOM.tmp`, PID no
/// longer running): removed the first time this process makes a temporary name in that folder.
/// A live process's are never touched, whatever it is.
public enum StaleTemporaries {
    private static let swept = Mutex<Set<String>>([])

    private static func first(_ dir: String) -> Bool {
        swept.withLock { $0.insert(dir).inserted }
    }

    public static func sweep(_ dir: String) {
        guard first(dir), let d = opendir(dir.isEmpty ? "." : dir) else { return }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            names.append(
                withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
        }
        for n in names where n.hasPrefix(".") && n.hasSuffix(".tmp") {
            guard let pid = ownerPID(n), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            removeTree(dir + "/" + n)
        }
    }

    /// The PID in `.NAME.stamp-PID-RANDOM.tmp`.
    static func ownerPID(_ name: String) -> pid_t? {
        let u = Array(name.utf8), marker = Array(".stamp-".utf8)
        guard u.count > marker.count + 4 else { return nil }
        var at = -1
        for k in stride(from: u.count - marker.count, through: 0, by: -1) where Array(u[k..<k + marker.count]) == marker
        {
            at = k
            break
        }
        guard at >= 0 else { return nil }
        let rest = String(decoding: u[(at + marker.count)..<(u.count - 4)], as: UTF8.self)  // without ".tmp"
        let parts = rest.split(separator: "-")
        guard parts.count == 2, let pid = pid_t(parts[0]), pid > 0 else { return nil }
        return pid
    }
}

/// Temporary folders this process is filling; removed if it is interrupted.
public enum TemporaryFolders {
    private static let folders = Mutex<Set<String>>([])

    static func add(_ p: String) { folders.withLock { _ = $0.insert(p) } }
    /// The folder was renamed into place or removed: no longer this process's to clean.
    public static func done(_ p: String) { folders.withLock { _ = $0.remove(p) } }

    public static func removeAll() {
        folders.withLock { folders in
            for f in folders { removeTree(f) }
            folders.removeAll()
        }
    }
}

/// Removes a file or a folder and everything in it, without following symlinks.
public func removeTree(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if (st.st_mode & S_IFMT) == S_IFDIR {
        if let d = opendir(path) {
            var names: [String] = []
            while let e = readdir(d) {
                let n = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if n != "." && n != ".." { names.append(n) }
            }
            closedir(d)
            for n in names { removeTree(path + "/" + n) }
        }
        rmdir(path)
    } else {
        unlink(path)
    }
}
