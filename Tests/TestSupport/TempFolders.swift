import Foundation

private let testRootPath = NSTemporaryDirectory() + "stamp-tests-\(getpid())"

/// Every folder a test makes is under this one, which is removed when the test process exits:
/// a run leaves nothing in $TMPDIR (the runtime tests' images alone take a GB). Folders of
/// earlier runs that were killed (their process is gone) are removed first.
public let testRoot: String = {
    let base = NSTemporaryDirectory()
    for n in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] where n.hasPrefix("stamp-tests-") {
        if let pid = pid_t(n.dropFirst("stamp-tests-".count)), kill(pid, 0) != 0, errno == ESRCH {
            try? FileManager.default.removeItem(atPath: base + n)
        }
    }
    try? FileManager.default.createDirectory(atPath: testRootPath, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: testRootPath) }
    return testRootPath
}()

/// A fresh folder for one test, under `testRoot`.
public func tempDir() throws -> String {
    let p = testRoot + "/test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
    return p
}
