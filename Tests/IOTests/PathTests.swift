import Testing
@testable import IO

struct PathTests {
    @Test(arguments: [
        ("usr/lib", "usr/lib"), ("./usr/lib", "usr/lib"), ("usr/lib/", "usr/lib"), ("./usr/lib/", "usr/lib"),
        ("././a", "a"), ("/usr//lib/./x", "usr/lib/x"), ("a/b/../c", "a/c"), ("./", ""), (".", ""), ("a/.", "a"),
        ("..a/b", "..a/b"), ("a/...", "a/..."), (".wh..wh..opq", ".wh..wh..opq"), ("é/ü", "é/ü"),
    ])
    func cleans(_ raw: String, _ clean: String) {
        #expect(Path.clean(raw) == clean)
        #expect(Path.isSafeEntryName(raw) == !raw.hasPrefix("/"))
    }

    @Test(arguments: ["../x", "a/../../x", "./../x", "/.."])
    func refusesEscapes(_ raw: String) {
        #expect(Path.clean(raw) == nil || raw.hasPrefix("/"))
        #expect(!Path.isSafeEntryName(raw))
    }
}
