internal import CCrypto

/// Hash algorithms stamp uses: SHA-256 for OCI digests, SHA-384 for SRI integrity values.
public enum HashAlgorithm: Sendable {
    case sha256, sha384

    public var name: String { self == .sha256 ? "sha256" : "sha384" }
    public var byteCount: Int { self == .sha256 ? 32 : 48 }

    /// Fetched once: OpenSSL 3 looks an algorithm up in its provider tables (under a lock) on
    /// every init given `EVP_sha256()`, which costs more than hashing a small file.
    fileprivate var md: OpaquePointer? { self == .sha256 ? fetchedSHA256 : fetchedSHA384 }
}

nonisolated(unsafe) private let fetchedSHA256: OpaquePointer? = EVP_MD_fetch(nil, "SHA256", nil) ?? EVP_sha256()
nonisolated(unsafe) private let fetchedSHA384: OpaquePointer? = EVP_MD_fetch(nil, "SHA384", nil) ?? EVP_sha384()

/// A streaming digest over OpenSSL's EVP interface (SHA-NI when the CPU has it).
/// Not thread-safe: create one per task.
public final class Digester {
    private var ctx: OpaquePointer?
    public let algorithm: HashAlgorithm
    /// Bytes fed so far.
    public private(set) var count: Int64 = 0

    public init(_ algorithm: HashAlgorithm = .sha256) {
        self.algorithm = algorithm
        ctx = EVP_MD_CTX_new()
        guard let ctx, EVP_DigestInit_ex(ctx, algorithm.md, nil) == 1 else {
            fatalError("OpenSSL cannot initialise \(algorithm.name): \(Digester.lastError())")
        }
    }

    deinit { EVP_MD_CTX_free(ctx) }

    public func update(_ buffer: UnsafeRawBufferPointer) {
        guard buffer.count > 0 else { return }
        EVP_DigestUpdate(ctx, buffer.baseAddress, buffer.count)
        count += Int64(buffer.count)
    }

    public func update<D: Sequence>(_ bytes: D) where D.Element == UInt8 {
        let array = Array(bytes)
        array.withUnsafeBytes { update($0) }
    }

    /// The raw digest bytes. The digester cannot be used afterwards.
    public func finalizeBytes() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var len: UInt32 = 0
        EVP_DigestFinal_ex(ctx, &out, &len)
        return Array(out.prefix(Int(len)))
    }

    /// Lowercase hex of the digest.
    public func finalizeHex() -> String { Hex.encode(finalizeBytes()) }

    /// `sha256:<hex>` as OCI descriptors spell it.
    public func finalizeDigest() -> String { "\(algorithm.name):\(finalizeHex())" }

    public static func hex(_ bytes: some Sequence<UInt8>, _ algorithm: HashAlgorithm = .sha256) -> String {
        Hex.encode(Digester.bytes(bytes, algorithm))
    }

    /// The digest of bytes in memory, in one call (no context kept).
    public static func bytes(_ bytes: some Sequence<UInt8>, _ algorithm: HashAlgorithm = .sha256) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: algorithm.byteCount)
        let done = bytes.withContiguousStorageIfAvailable { buf in
            EVP_Digest(buf.baseAddress, buf.count, &out, nil, algorithm.md, nil) == 1
        }
        if done == true { return out }
        let d = Digester(algorithm)
        d.update(bytes)
        return d.finalizeBytes()
    }

    public static func digest(_ bytes: some Sequence<UInt8>) -> String {
        "sha256:" + hex(bytes)
    }

    static func lastError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "unknown error" }
        var buf = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buf, buf.count)
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out = [UInt8]()
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

public enum Base64 {
    private static let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    public static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        var i = 0
        while i + 2 < bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [table[Int(n >> 18 & 63)], table[Int(n >> 12 & 63)], table[Int(n >> 6 & 63)], table[Int(n & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out += [table[Int(n >> 18 & 63)], table[Int(n >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [table[Int(n >> 18 & 63)], table[Int(n >> 12 & 63)], table[Int(n >> 6 & 63)], UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes standard or URL-safe base64, padded or not; nil on any other character.
    public static func decode(_ text: String) -> [UInt8]? {
        var out = [UInt8]()
        var acc: UInt32 = 0
        var bits = 0
        for c in text.utf8 {
            let v: UInt8
            switch c {
            case 65...90: v = c - 65
            case 97...122: v = c - 71
            case 48...57: v = c + 4
            case 43, 45: v = 62
            case 47, 95: v = 63
            case 61, 10, 13: continue
            default: return nil
            }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(acc >> UInt32(bits) & 0xff))
            }
        }
        return out
    }
}

/// The OpenSSL that hashes (its version at run time), for `stamp version`.
public enum CryptoLibrary {
    public static var version: String { String(cString: OpenSSL_version(Int32(OPENSSL_VERSION_STRING))) }
}

/// A file's SHA-256 and SHA-384 held inline, 80 bytes and no allocation: what a frontend of
/// 100,000 files keeps of each, where two hex and base64 strings would cost three times as much.
public struct ContentDigests: Sendable, Equatable {
    private var sha256Words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private var sha384Words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)

    /// From the digests' bytes (32 and 48 of them).
    public init(sha256: [UInt8], sha384: [UInt8]) {
        precondition(sha256.count == 32 && sha384.count == 48)
        withUnsafeMutableBytes(of: &sha256Words) { $0.copyBytes(from: sha256) }
        withUnsafeMutableBytes(of: &sha384Words) { $0.copyBytes(from: sha384) }
    }

    /// From a hex SHA-256 and an SRI value (`sha384-` and base64); nil when either is not one.
    public init?(sha256Hex: String, sri: String) {
        guard sha256Hex.utf8.count == 64, sri.hasPrefix("sha384-"),
            let b = Base64.decode(String(sri.dropFirst(7))), b.count == 48
        else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        var high: UInt8?
        for c in sha256Hex.utf8 {
            let v: UInt8
            switch c {
            case 48...57: v = c - 48
            case 97...102: v = c - 87
            default: return nil
            }
            if let h = high {
                bytes.append(h << 4 | v)
                high = nil
            } else {
                high = v
            }
        }
        self.init(sha256: bytes, sha384: b)
    }

    /// The digests of `bytes`.
    public init(of bytes: [UInt8]) {
        self.init(sha256: Digester.bytes(bytes, .sha256), sha384: Digester.bytes(bytes, .sha384))
    }

    public var sha256: [UInt8] { withUnsafeBytes(of: sha256Words) { Array($0) } }
    public var sha384: [UInt8] { withUnsafeBytes(of: sha384Words) { Array($0) } }
    public var sha256Hex: String { Hex.encode(sha256) }
    /// The Subresource Integrity value (`sha384-` and base64).
    public var sri: String { "sha384-" + Base64.encode(sha384) }

    public static func == (a: ContentDigests, b: ContentDigests) -> Bool {
        withUnsafeBytes(of: a.sha256Words) { x in withUnsafeBytes(of: b.sha256Words) { x.elementsEqual($0) } }
            && withUnsafeBytes(of: a.sha384Words) { x in withUnsafeBytes(of: b.sha384Words) { x.elementsEqual($0) } }
    }
}
