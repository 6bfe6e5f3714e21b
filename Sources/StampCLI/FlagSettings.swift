import ArgumentParser
import Foundation
import StampCore

/// An ArgumentParser property wrapper whose parsed value can be read without naming its type.
protocol ParsedValue {
    var parsedValue: Any { get }
}

extension Option: ParsedValue {
    var parsedValue: Any { wrappedValue }
}

extension Flag: ParsedValue {
    var parsedValue: Any { wrappedValue }
}

extension OptionGroup: ParsedValue {
    var parsedValue: Any { wrappedValue }
}

extension StampSettings {
    /// The settings that parsed flags give: every option and flag (in option groups too) whose
    /// property has the name of a settings field sets that field, so a new setting is a field and
    /// a flag of the same name, with no copying code. What the command line left unset (nil, an
    /// absent switch, an empty list) sets nothing, so a settings file still can.
    static func from(flags groups: [any ParsableArguments]) -> StampSettings {
        // Over the encoded empty settings: a decoder wants every field, defaults or not.
        var values =
            (try? JSONEncoder().encode(StampSettings())).flatMap {
                try? JSONSerialization.jsonObject(with: $0) as? [String: Any]
            } ?? [:]
        for group in groups { collect(group, into: &values) }
        guard let data = try? JSONSerialization.data(withJSONObject: values),
            let settings = try? JSONDecoder().decode(StampSettings.self, from: data)
        else { preconditionFailure("flags whose types are the settings' types decode as settings") }
        return settings
    }

    private static let fieldNames = Set(Mirror(reflecting: StampSettings()).children.compactMap(\.label))

    private static func collect(_ group: Any, into values: inout [String: Any]) {
        for child in Mirror(reflecting: group).children {
            guard let label = child.label, label.hasPrefix("_"), let wrapper = child.value as? ParsedValue else {
                continue
            }
            let name = String(label.dropFirst())
            var value = wrapper.parsedValue
            if value is any ParsableArguments {
                collect(value, into: &values)
                continue
            }
            guard fieldNames.contains(name) else { continue }
            let optional = Mirror(reflecting: value).displayStyle == .optional
            if optional {
                guard let some = Mirror(reflecting: value).children.first?.value else { continue }
                value = some
            }
            switch value {
            case let list as [String]: if !list.isEmpty { values[name] = list }
            // A switch (`--no-cache`) says something only when given; `--tls-verify false` does.
            case let on as Bool: if on || optional { values[name] = on }
            case let text as String: values[name] = text
            case let number as Int: values[name] = number
            default: preconditionFailure("flag --\(name) has a type settings do not hold: \(type(of: value))")
            }
        }
    }
}
