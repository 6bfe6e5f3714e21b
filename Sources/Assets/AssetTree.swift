import Foundation
import Hashing
import IO
import Glibc
import OCI
import Synchronization

/// Reading and writing asset folders on disk.
public enum AssetTree {
    /// Files of this size or more are worth leaving on disk (and spooling once rewritten) to
    /// keep memory flat; smaller ones are cheaper to hold than to read or write twice.
    public static let largeFile = 64 << 10
    /// A text file above this size is not read whole: it keeps its name and its bytes (copied as
    /// they are), and a search in pieces for the names of the other files pins each it names.
    /// Memory stays flat whatever one file's size; a real bundle is far smaller.
    public static let largestScanned = 32 << 20
    /// The pieces of such a file, and how far they overlap (longer than any name searched).
    static let window = 8 << 20, windowOverlap = 4 << 10

    /// Every regular file under `dir`, paths relative to it, sorted. Symlinks and special files
    /// are refused: a content hash of a link means nothing.
    /// Binary files (by extension: nothing in them is rewritten) stay on disk, their digests
    /// taken here; the rest is read into memory.
    /// `lazyText`: text files of `AssetTree.largeFile` bytes or more are left on disk too
    /// (`AssetFile.textFile`), read when hashed; smaller ones cost less in memory than the
    /// system calls of reading them again.
    public static func read(_ dir: String, lazyText: Bool = false) throws -> [AssetFile] {
        var st = stat()
        guard stat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw AssetError.invalid("\(dir): not a folder")
        }
        // The names first (one readdir per folder, types from it), then the files on all cores.
        var names: [String] = []
        func walk(_ rel: String) throws {
            let full = rel.isEmpty ? dir : dir + "/" + rel
            for (name, isDir) in try list(full) {
                let r = rel.isEmpty ? name : rel + "/" + name
                if isDir { try walk(r) } else { names.append(r) }
            }
        }
        try walk("")
        names.sort(by: utf8Less)
        let files = parallelMap(count: names.count) { [names] i -> Result<AssetFile, Error> in
            Result {
                let r = names[i], path = dir + "/" + r
                if AssetKind.of(r) == .binary { return AssetFile(path: r, onDisk: try digests(path)) }
                if lazyText {
                    var st = stat()
                    if stat(path, &st) == 0, st.st_size >= largeFile { return AssetFile(path: r, textFile: path) }
                }
                return AssetFile(path: r, bytes: try readFile(path))
            }
        }
        return try files.map { try $0.get() }
    }

    /// A folder's entries (not `.` and `..`) with whether each is a folder; anything but a
    /// regular file or a folder is refused.
    static func list(_ dir: String) throws -> [(String, Bool)] {
        guard let d = opendir(dir) else { throw AssetError.invalid("\(dir): \(String(cString: strerror(errno)))") }
        defer { closedir(d) }
        var out: [(String, Bool)] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            var type = e.pointee.d_type
            if type == UInt8(DT_UNKNOWN) {
                var st = stat()
                guard lstat(dir + "/" + name, &st) == 0 else {
                    throw AssetError.invalid("\(dir)/\(name): \(String(cString: strerror(errno)))")
                }
                type =
                    (st.st_mode & S_IFMT) == S_IFDIR
                    ? UInt8(DT_DIR) : (st.st_mode & S_IFMT) == S_IFREG ? UInt8(DT_REG) : UInt8(DT_LNK)
            }
            switch type {
            case UInt8(DT_DIR): out.append((name, true))
            case UInt8(DT_REG): out.append((name, false))
            default: throw AssetError.invalid("\(dir)/\(name): not a regular file or folder")
            }
        }
        return out
    }

    /// SHA-256, SRI (SHA-384) and size of a file, read once in 256 KiB pieces.
    static func digests(_ path: String) throws -> AssetFile.OnDisk {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AssetError.invalid("\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let d = ContentDigester()
        var buf = [UInt8](repeating: 0, count: 256 << 10)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw AssetError.invalid("\(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            buf.withUnsafeBytes { d.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        var o = d.onDisk(source: path)
        o.identity = identity(fd: fd)
        return o
    }

    /// What tells that a file has not changed since it was read: size, modification and change
    /// times, inode (each rewrite of a file changes its ctime). Cheaper than hashing it again.
    public static func identity(fd: Int32) -> String? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        return identity(st)
    }

    static func identity(_ st: stat) -> String {
        "\(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) \(st.st_ctim.tv_sec).\(st.st_ctim.tv_nsec) "
            + "\(st.st_ino)"
    }

    public static func identity(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return identity(st)
    }

    /// A file's bytes as written to an output: from memory, or copied from where they are
    /// (checked to be what was hashed: by the file's identity where it has one, else by digest;
    /// the spool is stamp's own).
    static func content(_ f: AssetFile) throws -> [UInt8] {
        if let t = f.textFile { return try readFile(t) }
        guard let d = f.stored else { return f.bytes }
        let bytes = try readFile(d.source, offset: d.offset, count: d.size)
        let same =
            bytes.count == d.size
            && (d.spool != nil || (d.identity.map { $0 == identity(d.source) } ?? (Digester.hex(bytes) == d.sha256)))
        guard same else { throw AssetError.invalid("\(d.source): changed while stamp was reading the folder") }
        return bytes
    }

    /// A whole file, or `count` bytes from `offset`.
    public static func readFile(_ path: String, offset: Int64 = 0, count: Int? = nil) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AssetError.invalid("\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw AssetError.invalid("\(path): \(String(cString: strerror(errno)))") }
        let n = count ?? max(0, Int(st.st_size) - Int(offset))
        var failure: Int32 = 0
        // Not zero-filled first: every byte kept is one pread wrote.
        return try [UInt8](unsafeUninitializedCapacity: n) { buf, count in
            var done = 0
            while done < n {
                let r = pread(fd, buf.baseAddress! + done, n - done, off_t(offset) + off_t(done))
                if r < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    break
                }
                if r == 0 { break }
                done += r
            }
            count = done
        }.withFailure(failure, path)
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        if let e = bytes.withUnsafeBytes({ FileDescriptor.writeAll(fd, $0) }) {
            throw AssetError.invalid("\(path): \(FileDescriptor.describe(e))")
        }
    }

    /// Writes `files` as a new folder `dest` (which must not exist, or be empty): into a
    /// temporary folder beside it, renamed into place when complete.
    public static func write(_ files: [AssetFile], to dest: String) throws {
        let writer = try Writer(to: dest)
        for f in files { writer.add(f) }
        try writer.finish()
    }

    /// Writes a new folder file by file, on a thread of its own, as files are handed to it
    /// (`AssetOptions.ready`); `finish` renames it into place. It goes to a temp folder beside
    /// `dest`, removed if anything fails or `finish` is never reached.
    ///
    /// `folders`, `failure` and `finished` are used by the writing queue only, and by `finish`
    /// after it has waited for that queue; what is handed over is under a `Mutex`: the unchecked
    /// conformance is safe.
    public final class Writer: @unchecked Sendable {
        let dest: String
        let tmp: String
        private let queue = DispatchQueue(label: "stamp.assets.writer")
        /// Files handed over and not yet taken by the writing thread, which takes them in
        /// batches (one wake-up per batch, not per file); whether it is taking them.
        private let handed = Mutex<(pending: [AssetFile], draining: Bool)>(([], false))
        /// Open folders of the output by relative path ("" is the root): files are created
        /// relative to them, not by resolving the whole path each time.
        private var folders: [String: Int32] = [:]
        private var failure: Error?
        private var finished = false

        public init(to dest: String) throws {
            let fm = FileManager.default
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: dest, isDirectory: &isDir) {
                guard isDir.boolValue, (try fm.contentsOfDirectory(atPath: dest)).isEmpty else {
                    throw AssetError.invalid("\(dest): exists and is not an empty folder")
                }
            }
            self.dest = dest
            do { tmp = try Path.makeTemporaryDirectory(beside: dest) } catch {
                throw AssetError.invalid("\(error)")
            }
        }

        public func add(_ f: AssetFile) {
            let start = handed.withLock { h in
                h.pending.append(f)
                defer { h.draining = true }
                return !h.draining
            }
            if start { queue.async { [self] in drain() } }
        }

        private func drain() {
            while true {
                let batch = handed.withLock { h in
                    let batch = h.pending
                    h.pending = []
                    if batch.isEmpty { h.draining = false }
                    return batch
                }
                if batch.isEmpty { return }
                for f in batch where failure == nil {
                    do { try write(f) } catch { failure = error }
                }
            }
        }

        private func write(_ f: AssetFile) throws {
            let slash = f.path.utf8.lastIndex(of: 0x2F)
            let dir = slash.map { String(f.path[..<$0]) } ?? ""
            let name = slash.map { String(f.path[f.path.utf8.index(after: $0)...]) } ?? f.path
            let at = try folder(dir)
            let fd = openat(at, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw AssetError.invalid("\(tmp)/\(f.path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            if let d = f.onDisk, d.spool == nil, d.offset == 0, let id = d.identity,
                try copyFile(d.source, to: fd, size: d.size, identity: id)
            {
                return
            }
            try writeAll(fd, try content(f), path: tmp + "/" + f.path)
        }

        /// A file copied in the kernel (no bytes through this process), when it is still the
        /// file that was hashed; false when it is not (the caller reads and checks it).
        private func copyFile(_ source: String, to out: Int32, size: Int, identity: String) throws -> Bool {
            let src = open(source, O_RDONLY | O_CLOEXEC)
            guard src >= 0 else { return false }
            defer { close(src) }
            guard AssetTree.identity(fd: src) == identity else { return false }
            var left = size
            while left > 0 {
                let n = sendfile(out, src, nil, left)
                if n < 0, errno == EINTR { continue }
                if n <= 0 {
                    // Not supported here (or nothing more to copy): start over with read and write.
                    guard lseek(out, 0, SEEK_SET) == 0, ftruncate(out, 0) == 0 else {
                        throw AssetError.invalid("\(source): \(String(cString: strerror(errno)))")
                    }
                    return false
                }
                left -= n
            }
            return true
        }

        /// The open folder `dir` of the output, made (with its parents) the first time.
        private func folder(_ dir: String) throws -> Int32 {
            if let fd = folders[dir] { return fd }
            let slash = dir.utf8.lastIndex(of: 0x2F)
            let parent = try dir.isEmpty ? AT_FDCWD : folder(slash.map { String(dir[..<$0]) } ?? "")
            let path = dir.isEmpty ? tmp : String(slash.map { dir[dir.utf8.index(after: $0)...] } ?? dir[...])
            if !dir.isEmpty, mkdirat(parent, path, 0o755) != 0, errno != EEXIST {
                throw AssetError.invalid("\(tmp)/\(dir): \(String(cString: strerror(errno)))")
            }
            let fd = openat(parent, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { throw AssetError.invalid("\(tmp)/\(dir): \(String(cString: strerror(errno)))") }
            folders[dir] = fd
            return fd
        }

        private func closeFolders() {
            for fd in folders.values { close(fd) }
            folders = [:]
        }

        /// Waits for the files handed over, then renames the folder into place.
        public func finish() throws {
            let error = queue.sync {
                closeFolders()
                return failure
            }
            finished = true
            let fm = FileManager.default
            defer { TemporaryFolders.done(tmp) }
            do {
                if let error { throw error }
                if fm.fileExists(atPath: dest) { try fm.removeItem(atPath: dest) }
                try fm.moveItem(atPath: tmp, toPath: dest)
            } catch {
                try? fm.removeItem(atPath: tmp)
                throw AssetError.invalid("\(dest): \(error)")
            }
        }

        deinit {
            queue.sync { closeFolders() }
            if !finished {
                try? FileManager.default.removeItem(atPath: tmp)
                TemporaryFolders.done(tmp)
            }
        }
    }
}

private extension Array where Element == UInt8 {
    /// Self, or the error of a read that failed (`errno`).
    func withFailure(_ errno: Int32, _ path: String) throws -> [UInt8] {
        if errno != 0 { throw AssetError.invalid("\(path): \(String(cString: strerror(errno)))") }
        return self
    }
}
