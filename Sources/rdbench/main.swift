import Glibc
import LoadHarness

// rdbench: load harness for hbbs/hbbr (docs/PERFORMANCE.md, "rdbench"). Logic lives in LoadHarness.
exit(Rdbench.main(Array(CommandLine.arguments.dropFirst())))
