import StampCLI
#if canImport(Glibc)
    import Glibc
#endif

// Non-ASCII names must reach libarchive as UTF-8 (it reads the locale).
_ = setlocale(LC_CTYPE, "C.UTF-8")
InterruptCleanup.install()
CrashReport.install()
StampCommand.mainChecked()
