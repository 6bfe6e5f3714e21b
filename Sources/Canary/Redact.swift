import Foundation

/// What stamp never prints: the credentials in a URL, a token or a password that an error of
/// a library quotes back.
public enum Redact {
    /// `scheme://user:password@host/…` → `scheme://***@host/…`; other text as it is.
    public static func url(_ s: String) -> String { urls(in: s) }

    /// `text` with the credentials of every URL in it replaced (`scheme://user:pw@host` →
    /// `scheme://***@host`): an error that quotes a reference back (`docker://ci:pw@host/repo`,
    /// which is no valid reference) shows no password.
    public static func urls(in text: String) -> String {
        guard text.contains("://") else { return text }
        var out = ""
        var rest = Substring(text)
        while let scheme = rest.range(of: "://") {
            out += rest[..<scheme.upperBound]
            let after = rest[scheme.upperBound...]
            let end = after.firstIndex(where: { "/?#\"' \t\n\r<>".contains($0) }) ?? after.endIndex
            if let at = after[..<end].lastIndex(of: "@") {
                out += "***"
                rest = after[at...]
            } else {
                rest = after
            }
        }
        return out + rest
    }

    /// Whether a URL carries credentials (`user[:password]@`).
    public static func hasCredentials(_ s: String) -> Bool { url(s) != s }

    /// `text` with every occurrence of each secret (and of its trimmed form) replaced.
    public static func secrets(_ text: String, _ secrets: [String]) -> String {
        var out = text
        for s in secrets {
            for form in [s, s.trimmingCharacters(in: .whitespacesAndNewlines)] where form.count >= 4 {
                out = out.replacingOccurrences(of: form, with: "(redacted)")
            }
        }
        return out
    }
}
