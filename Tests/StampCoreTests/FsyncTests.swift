import Foundation
import Testing
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
            let r = try run(["strace", "-f", "-qq", "-o", log, "-e", "trace=fsync,fdatasync,rename",
                             stampBin, "build", "--base", "oci-archive:\(dir)/base.tar:1.16.0", "--version", "v1", "--revision", "r",
                             "--output", out] + flags,
                            env: ["SOURCE_DATE_EPOCH": "1743811200", "STAMP_CACHE_DIR": testCacheDir])
            #expect(r.status == 0, "\(r.err)")
            let calls = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map(String.init)
            let synced = calls.indices.filter { calls[$0].contains("fsync(") || calls[$0].contains("fdatasync(") }
            let renamed = try #require(calls.firstIndex { $0.contains("rename(") && $0.contains("\"\(out)\"") }, "\(calls)")
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
