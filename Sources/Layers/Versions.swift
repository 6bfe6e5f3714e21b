internal import CArchive
internal import CDeflate
internal import CIsal

/// The C libraries that read and write layers, for `stamp version`: the new layer's bytes depend
/// on libdeflate's, so a reproducible build names it. libarchive reports its own version at run
/// time; libdeflate and ISA-L have no such call, so theirs is the one stamp was built against.
public enum LibraryVersions {
    public static var libarchive: String { String(cString: archive_version_string()).replacingPrefix("libarchive ") }
    public static var libdeflate: String { LIBDEFLATE_VERSION_STRING }
    public static var isal: String { "\(ISAL_MAJOR_VERSION).\(ISAL_MINOR_VERSION).\(ISAL_PATCH_VERSION)" }
}

extension String {
    fileprivate func replacingPrefix(_ p: String) -> String { hasPrefix(p) ? String(dropFirst(p.count)) : self }
}
