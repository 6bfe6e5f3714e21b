import Testing
@testable import OCI

@Suite struct JSONValueTests {
    @Test func keepsNumbersUnknownKeysAndNulls() throws {
        let src =
            #"{"b":[1,2.50,1e3,-0,12345678901234567890],"a":{"OnBuild":null,"x":true},"Healthcheck":{"Interval":60000000000}}"#
        let v = try JSONValue.parse(src)
        #expect(
            JSONValue.encodeString(v)
                == #"{"Healthcheck":{"Interval":60000000000},"a":{"OnBuild":null,"x":true},"b":[1,2.50,1e3,-0,12345678901234567890]}"#
        )
    }

    @Test func escapesOnlyWhatJSONRequires() throws {
        let v: JSONValue = .object([("k", .string("a/b <&> \"q\" \\ \n\t\u{1} é 😀"))])
        let text = JSONValue.encodeString(v)
        #expect(text == "{\"k\":\"a/b <&> \\\"q\\\" \\\\ \\n\\t\\u0001 é 😀\"}")
        #expect(try JSONValue.parse(text) == v)
    }

    @Test func decodesEscapesAndSurrogates() throws {
        let v = try JSONValue.parse(#"["\u00e9\ud83d\ude00\/"]"#)
        #expect(v.arrayValue?.first?.stringValue == "é😀/")
    }

    @Test func sortsKeysByBytes() {
        let v: JSONValue = .object([("b", .null), ("B", .null), ("a", .null), ("é", .null)])
        #expect(JSONValue.encodeString(v) == #"{"B":null,"a":null,"b":null,"é":null}"#)
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "tru", "\"\u{1}\"", "01x", "{} x", "[1e]"])
    func rejectsMalformed(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }

    @Test func subscriptSetsReplacesAndRemoves() {
        var v: JSONValue = .object([("a", JSONValue(1)), ("b", JSONValue(2))])
        v["a"] = .string("x")
        v["c"] = .bool(true)
        v["b"] = nil
        #expect(JSONValue.encodeString(v) == #"{"a":"x","c":true}"#)
    }
}
