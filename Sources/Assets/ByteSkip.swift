/// Passing over the bytes a scanner has nothing to do at, sixteen at a time: most of a
/// minified script is neither a quote nor a dot, and a byte-by-byte loop spends its time
/// there.
struct ByteSkip {
    private let wanted: [UInt8]
    private let table: [Bool]

    /// `wanted`: the bytes the scanner stops at (up to six).
    init(_ wanted: [UInt8]) {
        precondition(!wanted.isEmpty && wanted.count <= 6)
        self.wanted = wanted
        var t = [Bool](repeating: false, count: 256)
        for w in wanted { t[Int(w)] = true }
        table = t
    }

    /// The first index at or after `i` that holds a wanted byte; `b.count` when there is none.
    @inline(__always)
    func next(_ b: UnsafeBufferPointer<UInt8>, from i: Int) -> Int {
        guard let base = b.baseAddress else { return b.count }
        let n = b.count
        var i = i
        let w = wanted
        let v0 = SIMD16<UInt8>(repeating: w[0])
        let v1 = SIMD16<UInt8>(repeating: w[w.count > 1 ? 1 : 0])
        let v2 = SIMD16<UInt8>(repeating: w[w.count > 2 ? 2 : 0])
        let v3 = SIMD16<UInt8>(repeating: w[w.count > 3 ? 3 : 0])
        let v4 = SIMD16<UInt8>(repeating: w[w.count > 4 ? 4 : 0])
        let v5 = SIMD16<UInt8>(repeating: w[w.count > 5 ? 5 : 0])
        while i + 16 <= n {
            let x = UnsafeRawPointer(base + i).loadUnaligned(as: SIMD16<UInt8>.self)
            let hit = (x .== v0) .| (x .== v1) .| (x .== v2) .| (x .== v3) .| (x .== v4) .| (x .== v5)
            if any(hit) { break }
            i += 16
        }
        while i < n, !table[Int(b[i])] { i += 1 }
        return i
    }
}
