import Foundation
import Testing
import TestSupport
import IO
import OCI
@testable import StampCore

/// An archive output is forced to disk before its rename only with `--fsync`; the bytes are
/// the same either way. Checked on the system calls strace sees.
@Suite struct FsyncTests {
    @Test func anArchiveIsSyncedOnlyWhenAsked() throws {
        let dir = try tempDir()
        try SampleImage.write(to: dir + "/base.tar", format: .ociArchive)
        var written: [[UInt8]] = []
        for flags in [[], ["--fsync"]] {
            let out = dir + "/out\(flags.count).tar", log = dir + "/calls\(flags.count).txt"
            let r = try run(
                [
                    "strace", "-f", "-qq", "-o", log, "-e", "trace=fsync,fdatasync,rename",
                    stampBin, "build", "--base", "oci-archive:\(dir)/base.tar:1.16.0", "--version", "v1", "--revision",
                    "r",
                    "--output", out,
                ] + flags,
                env: ["SOURCE_DATE_EPOCH": "1743811200", "STAMP_CACHE_DIR": testCacheDir])
            #expect(r.status == 0, "\(r.err)")
            let calls = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map(String.init)
            let synced = calls.indices.filter { calls[$0].contains("fsync(") || calls[$0].contains("fdatasync(") }
            let renamed = try #require(
                calls.firstIndex { $0.contains("rename(") && $0.contains("\"\(out)\"") }, "\(calls)")
            if flags.isEmpty {
                #expect(synced.isEmpty, "\(calls)")
            } else {
                #expect(!synced.isEmpty && synced.allSatisfy { $0 < renamed }, "\(calls)")
            }
            written.append(Array(try Data(contentsOf: URL(fileURLWithPath: out))))
        }
        #expect(written[0] == written[1])
    }
}

/// Each base blob is read once per build: a cold build's scan writes the layers it reads into
/// the archive as they pass, and the copy takes only what the scan did not read. Counted on the
/// bytes the kernel hands out from the base archive (strace -y names the file of each read).
@Suite struct SingleReadTests {
    /// Bytes returned by reads of `base`, summed over strace's per-thread logs `log.TID` (one
    /// file per thread, so no call is split across lines by another thread's).
    func bytesReadFromBase(_ log: String, base: String) throws -> Int {
        let dir = Path.dirname(log), prefix = Path.basename(log) + "."
        var total = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name.hasPrefix(prefix) {
            total += try String(contentsOfFile: dir + "/" + name, encoding: .utf8).split(separator: "\n")
                .filter { $0.contains("<\(base)>") }
                .compactMap { line in line.range(of: " = ", options: .backwards).flatMap { Int(line[$0.upperBound...]) }
                }
                .reduce(0, +)
        }
        return total
    }

    @Test func aBaseBlobIsReadOnce() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try run(["sh", "-c", "head -c 8388608 /dev/urandom > '\(dir)/big.bin'"]).status == 0)
        let base = dir + "/base.tar"
        #expect(
            try stamp([
                "sample", "--output", base, "--platform", "linux/amd64", "--no-attestations", "--extra-file",
                dir + "/big.bin",
            ]).status == 0)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: base)[.size] as? Int)
        var outputs: [[UInt8]] = []
        for (i, extra) in [["--no-cache"], [], []].enumerated() {
            // Cold (nothing cached, every layer read by the scan), then cold filling the cache,
            // then warm (no layer read by the scan, all copied).
            let log = dir + "/reads\(i).txt", out = dir + "/out\(i).tar"
            let r = try run(
                [
                    "strace", "-ff", "-qq", "-y", "-o", log, "-e", "trace=read,pread64", stampBin, "build", "--base",
                    "oci-archive:\(base):1.16.0",
                    "--version", "v1", "--revision", "r", "--output", out,
                ] + extra,
                env: ["SOURCE_DATE_EPOCH": "1743811200", "STAMP_CACHE_DIR": dir + "/cache"])
            #expect(r.status == 0, "\(r.err)")
            let read = try bytesReadFromBase(log, base: base)
            #expect(
                read >= size * 9 / 10 && read < size * 12 / 10, "run \(i): \(read) bytes read from a \(size)-byte base")
            outputs.append(Array(try Data(contentsOf: URL(fileURLWithPath: out))))
        }
        #expect(outputs[0] == outputs[1] && outputs[1] == outputs[2])
    }
}
