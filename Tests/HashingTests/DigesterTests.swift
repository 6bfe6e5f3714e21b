import Foundation
import Testing
import Hashing

/// Digests, hex and base64 as coreutils compute them: random inputs of awkward lengths, fed in
/// random pieces, against `sha256sum`, `sha384sum` and `base64`.
struct DigesterTests {
    func tool(_ name: String, _ bytes: [UInt8]) throws -> String {
        let input = FileManager.default.temporaryDirectory.path + "/stamp-hashing-\(getpid())-\(UUID().uuidString)"
        try Data(bytes).write(to: URL(fileURLWithPath: input))
        defer { unlink(input) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/" + name)
        p.arguments = name == "base64" ? ["-w0", input] : [input]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
    }

    @Test(arguments: [0, 1, 55, 56, 63, 64, 65, 1000, 65_537])
    func matchesCoreutils(_ length: Int) throws {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for (algorithm, name) in [(HashAlgorithm.sha256, "sha256sum"), (.sha384, "sha384sum")] {
            let d = Digester(algorithm)
            var at = 0
            while at < bytes.count {
                let n = min(bytes.count - at, Int.random(in: 1...4096, using: &rng))
                bytes[at..<at + n].withUnsafeBytes { d.update($0) }
                at += n
            }
            let expected = try tool(name, bytes)
            #expect(d.finalizeHex() == expected, "\(name), \(length) bytes")
            #expect(Digester.hex(bytes, algorithm) == expected)
        }
        #expect(Digester.digest(bytes) == "sha256:" + (try tool("sha256sum", bytes)))
        let b64 = try tool("base64", bytes)
        #expect(Base64.encode(bytes) == b64)
        #expect(Base64.decode(b64) == bytes)
    }
}
