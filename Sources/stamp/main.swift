import StampCLI
#if canImport(Glibc)
    import Glibc

    /// glibc's `mallopt` (malloc.h, which the Glibc module leaves out), and its M_MMAP_THRESHOLD.
    @_silgen_name("mallopt") func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
    let mmapThreshold: Int32 = -3
#endif

// Non-ASCII names must reach libarchive as UTF-8 (it reads the locale).
_ = setlocale(LC_CTYPE, "C.UTF-8")
#if canImport(Glibc)
    // Blocks of 128 KiB or more are mapped, and unmapped when freed. glibc otherwise raises
    // this threshold to the largest block freed so far (up to 32 MiB), after which the arrays
    // of a large frontend come from the heap and stay resident once freed: a build of 100,000
    // files peaked 24 MB higher. An environment that sets MALLOC_MMAP_THRESHOLD_ keeps its own.
    if getenv("MALLOC_MMAP_THRESHOLD_") == nil { _ = glibcMallopt(mmapThreshold, 128 << 10) }
#endif
InterruptCleanup.install()
CrashReport.install()
StampCommand.mainChecked()
