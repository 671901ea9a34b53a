import Glibc
import RustDeskUtils

// All behaviour lives in RustDeskUtils (tested there); this only wires the process to it.
let status = RustDeskUtils.run(arguments: Array(CommandLine.arguments.dropFirst())) { line in
    print(line)
}
exit(status)
