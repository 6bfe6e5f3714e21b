/// Shell-style globs over `/`-separated paths: `*` and `?` stay inside one segment, `**` spans
/// any number of segments, `[abc]` is a class. A pattern without `/` matches the base name.
public struct Glob: Sendable, Hashable {
    public let pattern: String
    private let parts: [UInt8]

    public init(_ pattern: String) {
        self.pattern = pattern
        parts = Array(pattern.utf8)
    }

    public func matches(_ path: String) -> Bool { matches(bytes: Array(path.utf8)[...]) }

    /// The same for a path's UTF-8 bytes (one conversion for many globs).
    public func matches(bytes p: ArraySlice<UInt8>) -> Bool {
        if !parts.contains(UInt8(ascii: "/")) {
            let base = p.lastIndex(of: UInt8(ascii: "/")).map { p[($0 + 1)...] } ?? p
            return Glob.match(parts[...], base)
        }
        return Glob.match(parts[...], p)
    }

    private static func match(_ g: ArraySlice<UInt8>, _ s: ArraySlice<UInt8>) -> Bool {
        var gi = g.startIndex, si = s.startIndex
        while gi < g.endIndex {
            let c = g[gi]
            if c == UInt8(ascii: "*") {
                let doubled = gi + 1 < g.endIndex && g[gi + 1] == UInt8(ascii: "*")
                var rest = g[(gi + (doubled ? 2 : 1))...]
                if doubled, rest.first == UInt8(ascii: "/") {
                    // `**/x` also matches `x` at this level.
                    if match(rest.dropFirst(), s[si...]) { return true }
                    rest = g[(gi + 2)...]
                }
                var k = si
                while true {
                    if match(rest, s[k...]) { return true }
                    if k == s.endIndex { return false }
                    if !doubled && s[k] == UInt8(ascii: "/") { return false }
                    k += 1
                }
            }
            guard si < s.endIndex else { return false }
            if c == UInt8(ascii: "?") {
                if s[si] == UInt8(ascii: "/") { return false }
            } else if c == UInt8(ascii: "["), let close = g[(gi + 1)...].firstIndex(of: UInt8(ascii: "]")) {
                let set = g[(gi + 1)..<close]
                var ok = false
                var i = set.startIndex
                while i < set.endIndex {
                    if i + 2 < set.endIndex, set[i + 1] == UInt8(ascii: "-") {
                        if (set[i]...set[i + 2]).contains(s[si]) { ok = true }
                        i += 3
                    } else {
                        if set[i] == s[si] { ok = true }
                        i += 1
                    }
                }
                if !ok { return false }
                gi = close
            } else if c != s[si] {
                return false
            }
            gi += 1
            si += 1
        }
        return si == s.endIndex
    }
}
