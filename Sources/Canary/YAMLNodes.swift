import Foundation
import Yams

/// Kubernetes manifests as YAML nodes: keys keep the order they are written in (what a reviewer
/// reads), and a string that YAML would read as a number, a boolean or null is quoted (a label
/// value `1.10` stays the text `1.10`).
enum Y {
    static func map(_ pairs: [(String, Node?)]) -> Node {
        .mapping(Node.Mapping(pairs.compactMap { k, v in v.map { (str(k), $0) } }))
    }

    static func seq(_ items: [Node]) -> Node { .sequence(Node.Sequence(items)) }

    static func str(_ s: String) -> Node {
        let plain = Node(s)
        let ambiguous = s.isEmpty || plain.int != nil || plain.float != nil || plain.bool != nil || plain.null != nil
        return .scalar(Node.Scalar(s, Tag(.str), ambiguous ? .doubleQuoted : .any))
    }

    static func int(_ i: Int) -> Node { .scalar(Node.Scalar(String(i), Tag(.int))) }

    static func labels(_ pairs: [(String, String)]) -> Node { map(pairs.map { ($0.0, str($0.1)) }) }

    /// One file's documents as text.
    static func text(_ docs: [Node]) throws -> String {
        try docs.map { try Yams.serialize(node: $0, width: -1) }.joined(separator: "---\n")
    }
}

extension Node {
    var text: String? { scalar?.string }
    var items: [Node] { sequence.map(Array.init) ?? [] }
}

extension Y {
    static func bool(_ b: Bool) -> Node { .scalar(Node.Scalar(b ? "true" : "false", Tag(.bool))) }
}
