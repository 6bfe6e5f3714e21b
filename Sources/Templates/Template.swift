import Foundation

/// A small logic-less template language for the Dockerfile templates in `dockerfiles/`:
///
///     {{name}}               the value, already quoted for where it lands (never HTML-escaped)
///     {{#list}}...{{/list}}  repeated for each item of a list, or shown when a flag is true
///     {{^name}}...{{/name}}  shown when the list is empty or the flag false
///     {{! a comment }}       dropped
///
/// Unknown names are errors, so a typo in an edited template fails loudly.
public enum TemplateValue: Sendable {
    case text(String)
    case flag(Bool)
    case list([[String: TemplateValue]])
}

public struct TemplateError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

public struct Template: Sendable {
    indirect enum Node: Sendable {
        case text(String)
        case variable(String, line: Int)
        case section(String, inverted: Bool, [Node], line: Int)
    }

    let nodes: [Node]
    public let name: String

    public init(_ text: String, name: String) throws {
        self.name = name
        var index = text.startIndex
        var line = 1
        func parse(until closing: String?) throws -> [Node] {
            var nodes: [Node] = []
            while index < text.endIndex {
                guard let open = text[index...].range(of: "{{") else {
                    nodes.append(.text(String(text[index...])))
                    index = text.endIndex
                    break
                }
                let literal = String(text[index..<open.lowerBound])
                line += literal.filter { $0 == "\n" }.count
                if !literal.isEmpty { nodes.append(.text(literal)) }
                guard let close = text[open.upperBound...].range(of: "}}") else {
                    throw TemplateError(message: "\(name):\(line): unclosed {{")
                }
                let tag = text[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
                index = close.upperBound
                // A section tag alone on its line takes the line with it.
                let standalone = (tag.hasPrefix("#") || tag.hasPrefix("^") || tag.hasPrefix("/") || tag.hasPrefix("!"))
                if standalone, literal.isEmpty || literal.hasSuffix("\n"), index < text.endIndex, text[index] == "\n" {
                    index = text.index(after: index)
                    line += 1
                }
                if tag.hasPrefix("!") { continue }
                if tag.hasPrefix("#") || tag.hasPrefix("^") {
                    let key = String(tag.dropFirst()).trimmingCharacters(in: .whitespaces)
                    let at = line
                    let body = try parse(until: key)
                    nodes.append(.section(key, inverted: tag.hasPrefix("^"), body, line: at))
                } else if tag.hasPrefix("/") {
                    let key = String(tag.dropFirst()).trimmingCharacters(in: .whitespaces)
                    guard key == closing else {
                        throw TemplateError(message: "\(name):\(line): {{/\(key)}} closes nothing open")
                    }
                    return nodes
                } else {
                    nodes.append(.variable(tag, line: line))
                }
            }
            if let closing { throw TemplateError(message: "\(name): {{#\(closing)}} is never closed") }
            return nodes
        }
        nodes = try parse(until: nil)
    }

    public func render(_ context: [String: TemplateValue]) throws -> String {
        var out = ""
        try render(nodes, [context], into: &out)
        return out
    }

    private func lookup(_ key: String, _ scopes: [[String: TemplateValue]], line: Int) throws -> TemplateValue {
        for scope in scopes.reversed() { if let v = scope[key] { return v } }
        throw TemplateError(message: "\(name):\(line): unknown name {{\(key)}}")
    }

    private func render(_ nodes: [Node], _ scopes: [[String: TemplateValue]], into out: inout String) throws {
        for n in nodes {
            switch n {
            case .text(let t): out += t
            case let .variable(key, line):
                guard case .text(let v) = try lookup(key, scopes, line: line) else {
                    throw TemplateError(message: "\(name):\(line): {{\(key)}} is a list or flag; use {{#\(key)}}")
                }
                out += v
            case let .section(key, inverted, body, line):
                let v = try lookup(key, scopes, line: line)
                var items: [[String: TemplateValue]]
                switch v {
                case .flag(let b): items = b ? [[:]] : []
                case .list(let l): items = l
                case .text(let t): items = t.isEmpty ? [] : [[:]]
                }
                if inverted { items = items.isEmpty ? [[:]] : [] }
                for item in items { try render(body, scopes + [item], into: &out) }
            }
        }
    }
}

extension Quote {
    /// A Dockerfile double-quoted word for LABEL and ENV: `\`, `"` and `$` escaped, so the
    /// value is taken literally.
    public static func dockerfile(_ s: String) throws -> String {
        guard !s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw TemplateError(message: "value \(json(s)) has a control character and cannot go into a Dockerfile")
        }
        var out = "\""
        for ch in s {
            if ch == "\\" || ch == "\"" || ch == "$" { out.append("\\") }
            out.append(ch)
        }
        return out + "\""
    }

    /// A Dockerfile JSON array (`COPY`, `HEALTHCHECK CMD`). Docker expands `$` even here, and a
    /// backslash escape of it is not portable across builders, so such values are refused.
    public static func dockerfileArray(_ items: [String]) throws -> String {
        for s in items where s.contains("$") || s.unicodeScalars.contains(where: { $0.value < 0x20 }) {
            throw TemplateError(
                message: "path \(json(s)) cannot be written safely in a Dockerfile (it holds $ or a control character)")
        }
        return "[" + items.map(json).joined(separator: ", ") + "]"
    }
}
