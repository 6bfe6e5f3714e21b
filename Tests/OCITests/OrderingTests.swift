import Testing
@testable import OCI

/// The order stamp writes JSON keys (and paths) in.
struct OrderingTests {
    /// Paths sort by their UTF-8 bytes (what tar, Go and `LC_ALL=C sort` do), not by Swift's
    /// Unicode order; bridged (non-contiguous) strings take the slow path and agree.
    @Test func sortsByUTF8Bytes() {
        let names = [
            "b", "a/b", "a", "a.js", "a/", "Z", "é", "z", "ab", "", "e\u{301}", "\u{1F600}", "x.1a2b3c4d.js", "x.js",
        ]
        let bytes = names.map { Array($0.utf8) }.sorted { $0.lexicographicallyPrecedes($1) }.map {
            String(decoding: $0, as: UTF8.self)
        }
        #expect(names.sorted(by: utf8Less) == bytes)
        for a in names {
            for b in names { #expect(utf8Less(a, b) == Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8))) }
        }
        let lazy = String(Substring("éz"))
        #expect(utf8Less(lazy, "z") == false && utf8Less("e", lazy))
    }
}
