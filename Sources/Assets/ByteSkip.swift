/// Passing over the bytes a scanner has nothing to do at, sixteen at a time: most of a
/// minified script is neither a quote nor a dot, and a byte-by-byte loop spends its time
/// there.
struct ByteSkip {
    /// The wanted bytes, each repeated across a vector (unused lanes repeat the first), and
    /// the same as a table for the last partial chunk.
    private let v0, v1, v2, v3, v4, v5: SIMD16<UInt8>
    private let table: [Bool]

    /// `wanted`: the bytes the scanner stops at (up to six).
    init(_ wanted: [UInt8]) {
        precondition(!wanted.isEmpty && wanted.count <= 6)
        let w = wanted + Array(repeating: wanted[0], count: 6 - wanted.count)
        (v0, v1, v2) = (SIMD16(repeating: w[0]), SIMD16(repeating: w[1]), SIMD16(repeating: w[2]))
        (v3, v4, v5) = (SIMD16(repeating: w[3]), SIMD16(repeating: w[4]), SIMD16(repeating: w[5]))
        var t = [Bool](repeating: false, count: 256)
        for x in wanted { t[Int(x)] = true }
        table = t
    }

    /// The first index at or after `i` that holds a wanted byte; `b.count` when there is none.
    @inline(__always)
    func next(_ b: UnsafeBufferPointer<UInt8>, from i: Int) -> Int {
        guard let base = b.baseAddress else { return b.count }
        let n = b.count
        var i = i
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
