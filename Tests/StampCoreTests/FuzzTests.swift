import Foundation
import Testing
import TestSupport

/// A short run of `stamp-fuzz` (Sources/stamp-fuzz) over the committed seeds in Tests/Fuzz/corpus:
/// the tar reader, the JSON parser, the frontend scanners and rewriter, stamp.yaml, references.
/// A crash or a superlinear input fails the test and leaves the input under the test's folder,
/// to become a test of its own. `make fuzz` runs a release build of it for longer.
@Suite struct FuzzTests {
    @Test func seededMutationsFindNothing() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let fuzzer = URL(fileURLWithPath: stampBin).deletingLastPathComponent().path + "/stamp-fuzz"
        try #require(FileManager.default.isExecutableFile(atPath: fuzzer), "\(fuzzer) is not built")
        let dir = try tempDir()
        let r = try run([
            fuzzer, "--seconds", "60", "--seed", "20261201", "--corpus", root + "/Tests/Fuzz/corpus", "--out", dir,
        ])
        #expect(r.status == 0, "stamp-fuzz found something (\(listing(dir))): \(r.err.suffix(600))")
        #expect(r.out.contains("nothing found"), "\(r.out)")
    }
}
