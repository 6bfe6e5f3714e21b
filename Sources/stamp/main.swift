import StampCLI

await StampCommand.main()
